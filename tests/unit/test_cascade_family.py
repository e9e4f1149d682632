"""Relationship derivation for the cascade (fh_screen.stages.features.family): pure polars, no database."""

import polars as pl
import pytest

from fh_screen.stages.features import family


def rel(*rows):
    return pl.DataFrame(
        [list(r) for r in rows] or None,
        schema={"patient_id": pl.Utf8, "relative_id": pl.Utf8, "relationship": pl.Utf8},
        orient="row",
    )


def found(frame, index="I"):
    """{relative_id: (relationship, degree)} for one index case."""
    sub = frame.filter(pl.col("index_patient_id") == index)
    return {r: (k, d) for r, k, d in sub.select("relative_id", "relationship", "degree").iter_rows()}


def run(relations, index=("I",), confirmed=None):
    return family.relatives(relations, pl.Series(list(index)), pl.Series(list(confirmed if confirmed is not None else index)))


def test_parent_child_recorded_in_one_direction_is_symmetric():
    out = run(rel(("I", "F", "parent"), ("M", "I", "child"), ("I", "K", "child"), ("K2", "I", "parent")))
    assert found(out) == {
        "F": ("parent", 1),
        "M": ("parent", 1),
        "K": ("child", 1),
        "K2": ("child", 1),
    }


def test_siblings_derived_through_shared_parents():
    out = run(rel(("I", "F", "parent"), ("I", "M", "parent"), ("S", "F", "parent"), ("S", "M", "parent")))
    assert found(out)["S"] == ("sibling", 1)


def test_explicit_sibling_either_direction():
    assert found(run(rel(("I", "S", "sibling"))))["S"] == ("sibling", 1)
    assert found(run(rel(("S", "I", "sibling"))))["S"] == ("sibling", 1)


def test_one_shared_parent_with_other_parent_unknown_is_a_sibling():
    # S's second parent is not recorded: we cannot tell a half-sibling, so invite as first degree.
    out = run(rel(("I", "F", "parent"), ("I", "M", "parent"), ("S", "F", "parent")))
    assert found(out)["S"] == ("sibling", 1)


def test_half_sibling_is_second_degree_and_needs_the_shared_parent_confirmed():
    relations = rel(("I", "F", "parent"), ("I", "M", "parent"), ("H", "F", "parent"), ("H", "Q", "parent"))
    assert "H" not in found(run(relations, confirmed=["I"]))
    out = run(relations, confirmed=["I", "F"])
    assert found(out)["H"] == ("half_sibling", 2)
    # through the other (unconfirmed) parent M nothing opens
    assert "Q" not in found(out)


def test_second_degree_only_through_confirmed_first_degree_relatives():
    relations = rel(
        ("I", "F", "parent"),
        ("F", "GF", "parent"),  # grandparent
        ("F", "U", "sibling"),  # uncle
        ("I", "C", "child"),
        ("C", "GC", "child"),  # grandchild
        ("I", "S", "sibling"),
        ("S", "N", "child"),  # niece/nephew
    )
    assert set(found(run(relations, confirmed=["I"]))) == {"F", "C", "S"}
    out = found(run(relations, confirmed=["I", "F", "C", "S"]))
    assert out["GF"] == ("grandparent", 2)
    assert out["U"] == ("aunt_uncle", 2)
    assert out["GC"] == ("grandchild", 2)
    assert out["N"] == ("niece_nephew", 2)


def test_confirmed_relative_who_is_not_first_degree_opens_nothing():
    # C is confirmed but is a grandchild (second degree): the cascade stops there.
    relations = rel(("I", "K", "child"), ("K", "C", "child"), ("C", "CC", "child"))
    out = found(run(relations, confirmed=["I", "K", "C"]))
    assert out == {"K": ("child", 1), "C": ("grandchild", 2)}


def test_closest_relationship_wins_and_index_is_never_its_own_relative():
    # F is both parent and (through a bad explicit row) sibling; I appears as F's child.
    relations = rel(("I", "F", "parent"), ("I", "F", "sibling"), ("F", "I", "child"))
    out = run(relations, confirmed=["I", "F"])
    assert found(out) == {"F": ("parent", 1)}
    assert out.filter(pl.col("relative_id") == pl.col("index_patient_id")).height == 0
    assert out.select("index_patient_id", "relative_id").is_unique().all()


def test_relatives_outside_the_patient_register_are_kept():
    # The graph knows nothing of the register: a relative id absent from patients still counts.
    assert found(run(rel(("I", "NOT-IN-REGION", "sibling")))) == {"NOT-IN-REGION": ("sibling", 1)}


def test_several_index_cases_each_get_their_own_rows():
    out = run(rel(("A", "B", "sibling")), index=["A", "B"])
    assert found(out, "A") == {"B": ("sibling", 1)}
    assert found(out, "B") == {"A": ("sibling", 1)}


def test_no_relations_gives_an_empty_typed_frame():
    out = run(rel())
    assert out.height == 0
    assert out.schema == pl.Schema(family.RELATIVES_SCHEMA)


@pytest.mark.parametrize("label", family.RELATIONSHIP_ORDER)
def test_every_label_has_a_degree(label):
    assert family.DEGREE[label] in (1, 2)
