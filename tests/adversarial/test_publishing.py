"""Attacks on where a run writes: ``--out``, the work folder, the moved-aside old outputs,
the locks, and ``erase`` next to a run. Each test replays one attack through the
``fhscreen`` command and checks that nothing outside the run's own folders changed."""

from __future__ import annotations

import os
import stat
from datetime import date

import pytest

from adversarial_helpers import run_args, tree
from fh_screen.app import orchestration, run
from fh_screen.errors import UserError


def _one_line_refusal(code, err, status=2):
    assert code == status, err
    assert len(err) == 1 and err[0].startswith("fhscreen: "), err


def test_out_set_to_the_delivery_is_refused_and_the_delivery_kept(region, fhscreen):
    before = tree(region["extract"])
    code, err = fhscreen(*run_args(region, out=region["extract"]))
    _one_line_refusal(code, err)
    assert "delivery folder" in err[0]
    assert tree(region["extract"]) == before


@pytest.mark.parametrize("where", ["parent", "dot"])
def test_out_above_the_delivery_and_the_store_is_refused(region, fhscreen, monkeypatch, where):
    """``--out`` = the folder holding the delivery and the store (or ``.`` there)."""
    assert fhscreen(*run_args(region))[0] == 0         # a store and its audit log exist
    before = tree(region["root"])
    monkeypatch.chdir(region["root"])
    out = region["root"] if where == "parent" else "."
    code, err = fhscreen(*run_args(region, out=out))
    _one_line_refusal(code, err)
    assert tree(region["root"]) == before


def test_out_inside_the_delivery_is_refused(region, fhscreen):
    code, err = fhscreen(*run_args(region, out=region["extract"] / "results"))
    _one_line_refusal(code, err)
    assert not (region["extract"] / "results").exists()


def test_an_existing_folder_that_is_not_an_output_is_never_replaced(region, fhscreen):
    home = region["root"] / "home"
    home.mkdir()
    (home / "thesis.txt").write_text("years of work", encoding="utf-8")
    code, err = fhscreen(*run_args(region, out=home))
    _one_line_refusal(code, err)
    assert "not fh-screen outputs" in err[0]
    assert (home / "thesis.txt").read_text(encoding="utf-8") == "years of work"
    assert not region["db"].exists() and not (region["root"] / ".home.partial").exists()


def test_an_empty_folder_and_the_products_own_outputs_are_replaced(region, fhscreen):
    region["out"].mkdir()
    assert fhscreen(*run_args(region))[0] == 0
    assert fhscreen(*run_args(region))[0] == 0         # its own earlier outputs
    assert (region["out"] / "run_manifest.json").is_file()


def test_two_regions_sharing_one_out_are_refused(region, fhscreen):
    assert fhscreen(*run_args(region))[0] == 0
    first = tree(region["out"])
    code, err = fhscreen(*run_args(region, db=region["root"] / "other-region.duckdb"))
    _one_line_refusal(code, err)
    assert "another store" in err[0]
    assert tree(region["out"]) == first
    assert stat.S_IMODE(os.lstat(region["out"]).st_mode) == 0o700


def test_two_stores_cannot_write_one_out_at_the_same_time(region, fhscreen):
    from fh_screen.app import publishing

    with publishing.hold(region["root"] / "other.duckdb", region["out"]):
        code, err = fhscreen(*run_args(region))
    _one_line_refusal(code, err, status=3)
    assert not region["out"].exists()


def test_partitions_sharing_an_output_root_are_refused(tmp_path):
    parts = [{"name": n, "extracts": str(tmp_path / n), "db": str(tmp_path / f"{n}.duckdb"),
              "out": str(tmp_path / "runs")} for n in ("nord", "syd")]
    with pytest.raises(UserError, match="own output folder"):
        orchestration.partitions(__import__("json").dumps(parts))


def test_an_unwritable_out_is_one_line(region, fhscreen):
    blocker = region["root"] / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    code, err = fhscreen(*run_args(region, out=blocker / "out"))
    _one_line_refusal(code, err)


def test_a_planted_work_folder_link_is_never_followed(region, fhscreen):
    """A ``.out.partial`` symlink planted in a shared parent must not receive the outputs."""
    planter = region["root"] / "planter"
    planter.mkdir()
    os.symlink(planter, region["root"] / ".out.partial")
    code, err = fhscreen(*run_args(region))
    _one_line_refusal(code, err)
    assert "symbolic link" in err[0]
    assert list(planter.iterdir()) == []
    assert not region["out"].exists()
    assert (region["root"] / ".out.partial").is_symlink()       # refused, not followed or removed


def test_a_planted_work_folder_link_is_refused_on_the_airflow_path_too(tmp_path):
    part = {"name": "nord", "extracts": str(tmp_path / "ex"), "db": str(tmp_path / "fh.duckdb"),
            "out": str(tmp_path / "runs")}
    (tmp_path / "runs").mkdir()
    (tmp_path / "planter").mkdir()
    os.symlink(tmp_path / "planter", tmp_path / "runs" / ".2026-11-23.partial")
    with pytest.raises(UserError, match="symbolic link"):
        orchestration.run_step(part, date(2026, 11, 23), "stage")
    assert list((tmp_path / "planter").iterdir()) == []


def test_a_work_folder_of_another_account_is_refused(region, fhscreen):
    if os.geteuid() != 0:
        pytest.skip("needs root to make a folder owned by another account")
    work = region["root"] / ".out.partial"
    work.mkdir()
    os.chown(work, 65534, 65534)
    code, err = fhscreen(*run_args(region))
    _one_line_refusal(code, err)
    assert "not a folder this account made" in err[0]


def test_a_planted_old_folder_does_not_break_publishing(region, fhscreen):
    """A planted ``.out.old`` (file, link or folder) made publishing fail after every step had
    committed; the moved-aside folder now has a fresh random name."""
    assert fhscreen(*run_args(region))[0] == 0
    planter = region["root"] / "planter"
    planter.mkdir()
    (planter / "keep.txt").write_text("mine", encoding="utf-8")
    os.symlink(planter, region["root"] / ".out.old")
    assert fhscreen(*run_args(region))[0] == 0
    assert (planter / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert not [p for p in region["root"].iterdir() if p.name.startswith(".out.old-")]


def test_a_symlinked_db_meets_the_same_lock(region, fhscreen):
    os.symlink(region["db"], region["root"] / "alias.duckdb")
    with run.lock_for(region["db"]):
        code, err = fhscreen(*run_args(region, db=region["root"] / "alias.duckdb"))
    _one_line_refusal(code, err, status=3)


def test_the_lock_files_are_owner_only_even_with_a_loose_umask(region, fhscreen):
    old = os.umask(0)
    try:
        assert fhscreen(*run_args(region))[0] == 0
    finally:
        os.umask(old)
    for lock in (region["root"] / "fh.duckdb.lock", region["root"] / ".out.lock"):
        assert stat.S_IMODE(os.lstat(lock).st_mode) == 0o600, lock


def test_erase_during_a_run_exits_3_in_one_line(region, fhscreen):
    assert fhscreen(*run_args(region))[0] == 0
    with run.lock_for(region["db"]):
        code, err = fhscreen("erase", "--db", region["db"], "--patient-id", "000101")
    _one_line_refusal(code, err, status=3)


def test_erase_refuses_a_store_that_does_not_exist(region, fhscreen):
    missing = region["root"] / "fh-typo.duckdb"
    code, err = fhscreen("erase", "--db", missing, "--patient-id", "000101")
    _one_line_refusal(code, err)
    assert not missing.exists()
