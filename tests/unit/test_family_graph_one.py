"""One family graph: the features (DLCN/Simon Broome/MEDPED items, scorer inputs) and the
cascade read relatives from ``family.relatives`` and agree on every person's degree."""

from datetime import date

import polars as pl

from fh_screen.stages.features import family
from fh_screen.stages.features.build import build_features, make_inputs

AS_OF = date(2026, 11, 23)


def person(pid: str, born: int, sex: str = "F") -> dict:
    return {"patient_id": pid, "birth_date": date(born, 1, 1), "sex": sex}


def test_two_children_of_a_recorded_parent_are_first_degree_siblings():
    people = [person("A", 1980), person("B", 1978, "M"), person("C", 1950)]
    relations = [{"patient_id": "A", "relative_id": "C", "relationship": "parent"},
                 {"patient_id": "B", "relative_id": "C", "relationship": "parent"}]
    dx = [{"patient_id": "B", "icd10_code": "I21", "diagnosed_on": date(2018, 5, 1)}]  # MI at 40
    f = build_features(make_inputs(patients=people, relations=relations, diagnoses=dx), AS_OF)
    a = f.filter(pl.col("patient_id") == "A").row(0, named=True)
    assert (a["n_fdr"], a["n_sdr"]) == (2, 0)
    assert a["fdr_premature_chd"] and a["fdr_chd_before_60"]
    cascade = family.relatives(pl.DataFrame(relations), pl.Series(["A"]), pl.Series(["A"]))
    assert dict(zip(cascade["relative_id"], cascade["degree"])) == {"B": 1, "C": 1}


def test_half_siblings_are_second_degree_in_features_and_cascade():
    people = [person(p, 1980) for p in ("A", "B", "M", "F1", "F2")]
    relations = [{"patient_id": "A", "relative_id": "M", "relationship": "parent"},
                 {"patient_id": "A", "relative_id": "F1", "relationship": "parent"},
                 {"patient_id": "B", "relative_id": "M", "relationship": "parent"},
                 {"patient_id": "B", "relative_id": "F2", "relationship": "parent"}]
    f = build_features(make_inputs(patients=people, relations=relations), AS_OF)
    a = f.filter(pl.col("patient_id") == "A").row(0, named=True)
    assert (a["n_fdr"], a["n_sdr"]) == (2, 1)
    everyone = family.relatives(pl.DataFrame(relations), pl.Series(["A"]), None)
    assert dict(zip(everyone["relative_id"], everyone["relationship"])) == {
        "M": "parent", "F1": "parent", "B": "half_sibling"}


def test_feature_degree_counts_equal_the_graph_for_everyone():
    relations = pl.DataFrame([
        {"patient_id": c, "relative_id": p, "relationship": "parent"}
        for c, p in [("K1", "P1"), ("K1", "P2"), ("K2", "P1"), ("K2", "P2"), ("K3", "P1"), ("G1", "K1"),
                     ("P1", "GP"), ("U1", "GP")]
    ] + [{"patient_id": "K2", "relative_id": "X", "relationship": "sibling"}])
    ids = sorted(set(relations["patient_id"]) | set(relations["relative_id"]))
    f = build_features(make_inputs(patients=[person(i, 1960) for i in ids], relations=relations), AS_OF)
    graph = family.relatives(relations, pl.Series(ids), None)
    for row in f.iter_rows(named=True):
        mine = graph.filter(pl.col("index_patient_id") == row["patient_id"])
        assert row["n_fdr"] == mine.filter(pl.col("degree") == 1).height, row["patient_id"]
        assert row["n_sdr"] == mine.filter(pl.col("degree") == 2).height, row["patient_id"]
