"""The cascade reads relations and patients only for the families of its possible index
cases (``cascade.step.read_families``), and finds exactly the relatives and letter
recipients that the region's whole tables give: the night's cascade costs its families,
not the region."""

from __future__ import annotations

import random
from datetime import date

import polars as pl
import pytest

from fh_screen.stages.cascade import step as cascade
from fh_screen.stages.features import family
from fh_screen.store import db


def _store(tmp_path, relations: list[tuple[str, str, str]], people: set[str]):
    con = db.connect(tmp_path / "f.duckdb")
    con.executemany("INSERT INTO relations VALUES (?, ?, ?, 'd1')", [list(r) for r in relations])
    con.executemany("INSERT INTO patients (patient_id, birth_date, sex, delivery_id) VALUES (?, ?, 'F', 'd1')",
                    [[p, date(1970, 1, 1)] for p in sorted(people)])
    return con


def _whole(con):
    return (con.sql("SELECT patient_id, relative_id, relationship FROM relations").pl(),
            con.sql("SELECT patient_id FROM patients").pl())


def _found(relations: pl.DataFrame, index: list[str]) -> tuple[pl.DataFrame, list[str]]:
    """The cascade's relatives of ``index`` and the parents a child's letter could go to."""
    ids = pl.Series(index)
    links = family.parent_child(relations)
    rel = family.relatives(relations, ids, ids, links)
    kin = pl.concat([ids, rel["relative_id"]])
    parents = links.filter(pl.col("child_id").is_in(kin.implode()))["parent_id"]
    return rel, sorted(set(parents.to_list()))


def _random_pedigrees(seed: int) -> list[tuple[str, str, str]]:
    """Three families of ten generations of four people, each with up to two parents in the
    generation before and a recorded sibling row per generation, written in either direction."""
    rng = random.Random(seed)
    rows = []
    for fam in range(3):
        generations = [[f"f{fam}g{g}p{i}" for i in range(4)] for g in range(10)]
        for g in range(1, 10):
            for child in generations[g]:
                for parent in rng.sample(generations[g - 1], rng.choice([0, 1, 1, 2, 2, 2])):
                    rows.append((child, parent, "parent") if rng.random() < 0.5 else (parent, child, "child"))
            a, b = rng.sample(generations[g], 2)
            rows.append((a, b, "sibling"))
    return rows


@pytest.mark.parametrize("seed", range(3))
def test_relatives_and_recipients_read_for_the_families_equal_the_whole_region(tmp_path, seed):
    rows = _random_pedigrees(seed)
    people = {p for r in rows for p in r[:2]}
    index = sorted(random.Random(seed).sample(sorted(p for p in people if p.startswith("f0")), 3))
    con = _store(tmp_path, rows, people)
    try:
        read = cascade.read_families(con, pl.Series(index))
        relations, patients = _whole(con)
    finally:
        con.close()
    assert read["relations"].height < relations.height     # families, not the region
    rel, parents = _found(read["relations"], index)
    whole_rel, whole_parents = _found(relations, index)
    assert rel.equals(whole_rel)
    assert parents == whole_parents
    needed = set(rel["relative_id"]) | set(parents) | set(index)
    assert needed <= set(read["patients"]["patient_id"])


def test_families_read_too_narrowly_would_miss_an_aunt(tmp_path):
    # I's parent P (confirmed) opens the second degree: P's sibling A through grandparent G.
    rows = [("I", "P", "parent"), ("P", "G", "parent"), ("A", "G", "parent"), ("C", "A", "parent"),
            ("X", "Y", "sibling")]
    con = _store(tmp_path, rows, {"I", "P", "G", "A", "C", "X", "Y"})
    try:
        near = cascade.read_families(con, pl.Series(["I", "P"]), links=0)
        read = cascade.read_families(con, pl.Series(["I", "P"]))
    finally:
        con.close()
    assert "aunt_uncle" not in _found(near["relations"], ["I", "P"])[0]["relationship"].to_list()
    rel, _ = _found(read["relations"], ["I", "P"])
    assert ("I", "A", "aunt_uncle") in rel.select("index_patient_id", "relative_id", "relationship").rows()
    assert "X" not in set(read["patients"]["patient_id"])   # another family is not read
