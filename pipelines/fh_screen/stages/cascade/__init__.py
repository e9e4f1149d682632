"""Cascade family testing: index cases, their relatives' status, letters to send and the cascade ledger."""
