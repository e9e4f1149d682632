"""The cascade letter policies (``fh_screen.outputs.letters``), one table row per case.

Who is written to: an untested or tested relative of 18 or over with an address, or for a
child (under 18: Danish age of majority) a parent; which index case owns a direct letter;
which language a letter is written in. The age cut-off is tested at 17, 18 and 19.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from fh_screen.outputs.letters import ADULT_AGE, direct_recipients, letter_language, letter_owner


@pytest.mark.parametrize(
    "language, expected",
    [("da", "da"), ("en", "en"), ("EN", "en"), (" da", "da-default"), ("de", "da-default"), (None, "da-default")],
)
def test_letter_language(language, expected):
    frame = pl.DataFrame({"language": [language]}, schema={"language": pl.Utf8})
    got = frame.select(letter_language(pl.col("language"), "da-default")).item()
    assert got == expected


def _rows(status: str, age: int) -> pl.DataFrame:
    return pl.DataFrame({"index_patient_id": ["I1"], "relative_id": ["R1"], "status": [status], "age_now": [age]})


LINKS = pl.DataFrame({"child_id": ["R1", "R1"], "parent_id": ["P2", "P1"]})


@pytest.mark.parametrize(
    "status, age, addressable, writeable_index, expected",
    [
        # adults are written to themselves, from 18
        ("untested", ADULT_AGE + 1, ["R1", "P1"], [], "R1"),
        ("untested", ADULT_AGE, ["R1", "P1"], [], "R1"),
        ("tested", ADULT_AGE, ["R1"], [], "R1"),
        ("untested", ADULT_AGE, ["P1"], [], None),  # an adult without an address: no letter
        # under 18: a parent with an address, the lowest id
        ("untested", ADULT_AGE - 1, ["R1", "P1", "P2"], [], "P1"),
        ("untested", ADULT_AGE - 1, ["P2"], [], "P2"),
        ("untested", ADULT_AGE - 1, ["R1"], [], None),  # no addressable parent
        # a parent who is an index case written to themselves is preferred, address or not
        ("untested", ADULT_AGE - 1, ["P1", "P2"], ["P2"], "P2"),
        ("untested", ADULT_AGE - 1, [], ["P2"], "P2"),
        # only relatives who can act on a letter
        ("already_diagnosed", ADULT_AGE, ["R1"], [], None),
        ("moved", ADULT_AGE, ["R1"], [], None),
        ("outside_region", ADULT_AGE, ["R1"], [], None),
    ],
)
def test_direct_recipient(status, age, addressable, writeable_index, expected):
    out = direct_recipients(_rows(status, age), LINKS, pl.DataFrame({"patient_id": addressable}, schema={"patient_id": pl.Utf8}),
                            pl.Series(writeable_index, dtype=pl.Utf8).implode())
    assert out["recipient_id"].to_list() == ([expected] if expected else [])


def _sent(*letters: tuple[str, str, str, date]) -> pl.DataFrame:
    return pl.DataFrame([{"index_patient_id": i, "recipient_id": r, "kind": k, "sent_on": d} for i, r, k, d in letters],
                        schema={"index_patient_id": pl.Utf8, "recipient_id": pl.Utf8, "kind": pl.Utf8, "sent_on": pl.Date})


@pytest.mark.parametrize(
    "tonight, earlier, expected",
    [
        (["I2", "I1"], _sent(), "I1"),  # none before: the lowest index id of tonight's
        (["I1"], _sent(), "I1"),
        (["I1", "I2"], _sent(("I2", "R1", "relative", date(2026, 1, 5))), "I2"),  # the first letter keeps it
        (["I1", "I2", "I3"], _sent(("I3", "R1", "relative", date(2026, 1, 5)),
                                   ("I2", "R1", "relative", date(2026, 1, 6))), "I3"),  # earliest night
        (["I1", "I2", "I3"], _sent(("I3", "R1", "relative", date(2026, 1, 5)),
                                   ("I2", "R1", "relative", date(2026, 1, 5))), "I2"),  # same night: lowest id
        (["I1", "I2"], _sent(("I2", "R1", "index", date(2026, 1, 5))), "I1"),  # an index letter is not a direct one
        (["I1", "I2"], _sent(("I2", "R9", "relative", date(2026, 1, 5))), "I1"),  # someone else's letter
    ],
)
def test_letter_owner(tonight, earlier, expected):
    to_relatives = pl.DataFrame({"index_patient_id": tonight, "recipient_id": ["R1"] * len(tonight)})
    out = letter_owner(to_relatives, earlier)
    assert out.rows() == [("R1", expected)]
