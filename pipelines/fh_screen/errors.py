"""Errors a user sees as one line on stderr (exit status 2), never as a traceback."""


class UserError(Exception):
    """Unusable input or request: the message says what and where, without patient data."""


class DeliveryError(UserError):
    """A delivery that cannot be used at all (missing file or column, unreadable file)."""
