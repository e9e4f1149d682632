"""Property: a lab value is read as the number the lab wrote in its own dialect, and a
decimal comma in a file whose decimal mark is '.' is never read as any number."""

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from fh_screen.stages.ingest import normalise as nz

decimals = st.decimals(min_value=0, max_value=100_000, places=3, allow_nan=False, allow_infinity=False)


def parse(texts, decimal):
    value, censored, problem = nz.parse_number(pl.Series("v", texts, dtype=pl.String), decimal)
    return value.to_list(), censored.to_list(), problem.to_list()


@settings(max_examples=200, deadline=None)
@given(st.lists(decimals, min_size=1, max_size=20), st.sampled_from(["", "<", ">"]))
def test_each_dialect_reads_its_own_numbers(numbers, sign):
    dotted = [f"{sign}{n}" for n in numbers]
    comma = [t.replace(".", ",") for t in dotted]
    expected = [float(n) for n in numbers]
    for texts, decimal in ((dotted, "."), (comma, ",")):
        value, censored, problem = parse(texts, decimal)
        assert value == expected
        assert censored == [sign or None] * len(numbers)
        assert problem == [None] * len(numbers)


@settings(max_examples=200, deadline=None)
@given(st.lists(decimals.filter(lambda d: d != d.to_integral_value()), min_size=1, max_size=20))
def test_a_decimal_comma_in_a_dot_file_is_never_a_number(numbers):
    value, _, problem = parse([str(n).replace(".", ",") for n in numbers], ".")
    assert value == [None] * len(numbers)
    assert problem == [nz.AMBIGUOUS_DECIMAL] * len(numbers)
