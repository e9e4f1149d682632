"""Population-register mappings: latest snapshot, study population, relations, deaths,
emigration (fh_screen.convert.people)."""

from datetime import date

import polars as pl

from fh_screen.convert import people

S = pl.String


def rows(data: dict, snapshots=None) -> pl.DataFrame:
    n = len(next(iter(data.values())))
    frame = pl.DataFrame(data, schema={k: S for k in data}).with_columns(
        _file=pl.lit("bef.csv"), _row=pl.int_range(1, n + 1, dtype=pl.Int64))
    return frame.with_columns(_snapshot=pl.Series(snapshots or [None] * n, dtype=pl.Date))


def test_latest_snapshot_keeps_the_newest_row_and_sets_older_ones_aside():
    bef = rows({"person": ["A", "A", "B", "C", None], "sex": ["1", "1", "2", "2", "1"],
                "birth_date": ["1990-01-01", "01JAN1990", "12961", "not a date", "1990-01-01"],
                "mother": ["M1", "M2", None, None, None], "father": [None, None, None, None, None]},
               [date(2024, 3, 31), date(2024, 12, 31), date(2024, 3, 31), date(2024, 3, 31), date(2024, 3, 31)])
    persons, accounted = people.latest_snapshot(bef, ["1"], ["2"])
    assert persons["patient_id"].to_list() == ["A", "B"]
    assert persons.filter(pl.col("patient_id") == "A")["mother"].item() == "M2"       # from the December snapshot
    assert persons.filter(pl.col("patient_id") == "B")["birth_date"].item() == date(1995, 6, 27)
    assert accounted["_reason"].to_list() == [people.OLDER_SNAPSHOT, None, None, people.BAD_BIRTH, people.NO_PERSON]


def test_study_population_marks_people_missing_from_the_register():
    persons = pl.DataFrame({"patient_id": ["A", "B"]})
    pop = rows({"person": ["A", "Z"]})
    ids, accounted = people.study_population(persons, pop)
    assert ids.to_list() == ["A"]
    assert accounted["_reason"].to_list() == [None, people.NOT_IN_REGISTER]
    assert people.study_population(persons, None)[0].to_list() == ["A", "B"]


def test_relations_from_parent_ids():
    persons = pl.DataFrame({
        "patient_id": ["MUM", "DAD", "KID1", "KID2", "HALF", "GRAN"],
        "mother":     ["GRAN", None, "MUM", "MUM", "MUM", None],
        "father":     [None, None, "DAD", "DAD", None, None],
    })
    rel, missing = people.relations(persons, pl.Series(["KID1", "MUM"]))
    got = set(rel.iter_rows())
    assert got == {
        ("KID1", "MUM", "parent"), ("KID1", "DAD", "parent"), ("KID1", "KID2", "sibling"),
        ("MUM", "GRAN", "parent"), ("MUM", "KID1", "child"), ("MUM", "KID2", "child"), ("MUM", "HALF", "child"),
    }
    assert missing == 0
    rel, missing = people.relations(persons.filter(pl.col("patient_id") != "DAD"), pl.Series(["KID1"]))
    assert ("KID1", "DAD", "parent") in set(rel.iter_rows()) and missing == 1   # parent absent from the register


def test_moved_out_is_the_last_emigration_without_a_return():
    events = rows({
        "person":     ["A", "A", "B", "B", "B", "C", "C", "D", "E", "X"],
        "direction":  ["U", "I", "U", "I", "U", "U", "I", "U", "Q", "U"],
        "event_date": ["2020-01-01", "2021-01-01", "2018-01-01", "2019-01-01", "23011",
                       "2022-05-05", "05MAY2022", "garbage", "2020-01-01", "2020-01-01"],
    })
    moved, accounted, returned = people.moved_out(events, pl.Series(["A", "B", "C", "D", "E"]))
    assert moved.rows() == [("B", date(2023, 1, 1))]               # A returned; C left and came back the same day
    assert returned == 3
    reasons = accounted["_reason"].to_list()
    assert reasons[7] == people.BAD_DATE and reasons[8] == people.UNKNOWN_DIRECTION and reasons[9] == people.NOT_IN_POPULATION


def test_deaths_keep_the_earliest_record():
    dod = rows({"person": ["A", "A", "B", "Z"], "death_date": ["2024-02-02", "01JAN2024", "x", "2024-01-01"]})
    deceased, accounted = people.deaths(dod, pl.Series(["A", "B"]))
    assert deceased.rows() == [("A", date(2024, 1, 1))]
    assert accounted["_reason"].to_list() == [people.SECOND_DEATH, None, people.BAD_DATE, people.NOT_IN_POPULATION]


def test_status_codes_90_dead_80_emigrated():
    persons = pl.DataFrame({"patient_id": ["A", "B", "C", "D"], "status": ["90", "80", "01", "90"],
                            "status_date": ["2024-01-01", "02FEB2024", None, None]})
    deceased, moved, left_out = people.status_events(persons, ["90"], ["80"])
    assert deceased.rows() == [("A", date(2024, 1, 1))]
    assert moved.rows() == [("B", date(2024, 2, 2))]
    assert left_out.to_list() == ["D"]
