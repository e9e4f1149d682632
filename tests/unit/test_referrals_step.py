"""The referrals step on a DuckDB file: ledger tables, reruns, two nights, outputs."""

import stat
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.config import Clinic# noqa: E402
from fh_screen.stages.referrals.step import referrals_step# noqa: E402

AS_OF = f.AS_OF


def small_region():
    rows = [f.rule(f"p{i}", dlcn_points=15 - i) for i in range(6)]
    rows += [
        f.rule("nogp", practice_id=None, dlcn_points=6),
        f.rule("kid", age_years=11, is_child=True, dlcn_points=None, dlcn_category="not_calculable"),
        f.rule("check", route="check_secondary_cause_first", secondary_cause="TSH 14 mIU/L on 2025-03-02"),
        f.rule("dead", excluded_reason="deceased"),
        f.rule("known", excluded_reason="already_diagnosed"),
    ]
    people = f.patients_frame(rows, nogp={"practice_id": None})
    return rows, people


def settings():
    return f.settings(clinics=[
        Clinic(clinic_id="LK", name="Lipidklinik", weekly_capacity=3, postcodes=["5"]),
        Clinic(clinic_id="PAED", name="Børn", weekly_capacity=1, paediatric=True),
    ])


def read(db_path, sql):
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()


def test_rerun_of_the_same_night_changes_nothing(tmp_path):
    rows, people = small_region()
    db_path = f.build_db(tmp_path / "r.duckdb", rows, patients=people)
    ctx = f.context(tmp_path, db_path, cfg=settings())
    first = referrals_step(ctx)
    events_1 = read(db_path, "SELECT * FROM referral_events ORDER BY patient_id")
    ledger_1 = read(db_path, "SELECT * FROM referral_ledger ORDER BY patient_id")
    files_1 = {p.relative_to(ctx.work_dir): p.read_bytes() for p in sorted(ctx.work_dir.rglob("*")) if p.is_file()}

    second = referrals_step(ctx)
    events_2 = read(db_path, "SELECT * FROM referral_events ORDER BY patient_id")
    files_2 = {p.relative_to(ctx.work_dir): p.read_bytes() for p in sorted(ctx.work_dir.rglob("*")) if p.is_file()}
    assert events_1.equals(events_2) and events_1.height == 9
    assert ledger_1.equals(read(db_path, "SELECT * FROM referral_ledger ORDER BY patient_id"))
    assert files_1 == files_2
    assert {k: v for k, v in first.items() if not k.startswith("render_")} == {
        k: v for k, v in second.items() if not k.startswith("render_")
    }


def test_two_nights_in_the_database(tmp_path):
    rows, people = small_region()
    db_path = f.build_db(tmp_path / "r.duckdb", rows, patients=people)
    referrals_step(f.context(tmp_path, db_path, cfg=settings()))
    report = referrals_step(f.context(tmp_path, db_path, AS_OF + timedelta(days=1), cfg=settings()))
    events = read(db_path, "SELECT * FROM referral_events")
    shown = events.filter(pl.col("event").is_in(["listed", "reminder"]))
    assert shown.group_by("patient_id").len()["len"].max() == 1
    assert not set(events["patient_id"]) & {"dead", "known"}
    night_2 = events.filter(pl.col("as_of") == AS_OF + timedelta(days=1))
    assert set(night_2["event"]) == {"queued"}  # the week's 3 places went on night 1
    assert report["clinics"]["LK"]["used_earlier_in_week"] == 3
    per_clinic_week = shown.filter(pl.col("route") == "refer_lipid_clinic").group_by("clinic_id").len()
    assert dict(per_clinic_week.iter_rows()) == {"LK": 3, "PAED": 1}
    ledger = read(db_path, "SELECT * FROM referral_ledger")
    assert ledger["patient_id"].n_unique() == ledger.height
    assert dict(ledger.group_by("status").len().iter_rows()) == {"listed": 5, "queued": 4}


def test_outputs_are_written_owner_only_and_a_rerun_drops_stale_practices(tmp_path):
    rows, people = small_region()
    rows.append(f.rule("elsewhere", practice_id="P-GONE", route="check_secondary_cause_first"))
    people = pl.concat([people, f.patients_frame([rows[-1]])])
    db_path = f.build_db(tmp_path / "r.duckdb", rows, patients=people)
    ctx = f.context(tmp_path, db_path, cfg=settings())
    referrals_step(ctx)
    folder = ctx.work_dir / "worklists"
    assert {p.name for p in folder.iterdir() if p.is_file()} == {
        f"{s}.{ext}" for s in ("P1", "P-GONE") for ext in ("html", "pdf", "csv")
    }  # the patient without a GP is queued for capacity tonight, so no regional list yet
    for path in [ctx.work_dir / "referrals.csv", *folder.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path

    con = duckdb.connect(str(db_path))
    con.execute("DELETE FROM rule_results WHERE patient_id = 'elsewhere'")
    con.close()
    referrals_step(ctx)
    assert not (folder / "P-GONE.html").exists()


def test_without_rule_results_the_step_says_so(tmp_path):
    db_path = tmp_path / "empty.duckdb"
    from fh_screen.store import db

    db.connect(db_path).close()
    ctx = f.context(tmp_path, db_path)
    assert referrals_step(ctx) == {"skipped": "no rule_results"}
    assert "referrals" in ctx.manifest["features_off"]


def test_without_model_scores_ranking_falls_back_and_is_recorded(tmp_path):
    rows, people = small_region()
    db_path = f.build_db(tmp_path / "r.duckdb", rows, patients=people)
    ctx = f.context(tmp_path, db_path, cfg=settings())
    referrals_step(ctx)
    assert "referral_probability" in ctx.manifest["features_off"]
    table = pl.read_csv(ctx.work_dir / "referrals.csv")
    assert table["probability"].null_count() == table.height
    assert table["rank"].to_list() == sorted(table["rank"].to_list())


def test_model_scores_set_the_order(tmp_path):
    rows = [f.rule("a", dlcn_points=12), f.rule("b", dlcn_points=6)]
    scores = pl.DataFrame(
        [{"patient_id": "a", "probability": 0.2, "model_name": "m", "model_version": "2", "reasons": "",
          "reason_items": "[]"},
         {"patient_id": "b", "probability": 0.8, "model_name": "m", "model_version": "2", "reasons": "",
          "reason_items": "[]"}],
        schema=f.SCORE_SCHEMA, orient="row",
    )
    db_path = f.build_db(tmp_path / "r.duckdb", rows, scores=scores)
    ctx = f.context(tmp_path, db_path, cfg=f.settings(clinics=[]))
    referrals_step(ctx)
    table = pl.read_csv(ctx.work_dir / "referrals.csv")
    assert table["patient_id"].to_list() == ["b", "a"]
    html = (ctx.work_dir / "worklists" / "P1.html").read_text(encoding="utf-8")
    assert "m 2" in html  # model version in the footer
    assert "features_off" not in ctx.manifest


def test_as_of_is_stored_per_event(tmp_path):
    rows, people = small_region()
    db_path = f.build_db(tmp_path / "r.duckdb", rows, patients=people)
    referrals_step(f.context(tmp_path, db_path, date(2026, 2, 1), cfg=settings()))
    assert read(db_path, "SELECT DISTINCT as_of FROM referral_events")["as_of"].to_list() == [date(2026, 2, 1)]


def _with_stored_criterion(db_path, policy):
    """rule_results as the rules step stores it: with ``clinical_criterion`` (its one definition)."""
    from fh_screen.stages.rules.results import selection
    from fh_screen.store import db

    con = db.connect(db_path)
    try:
        frame = con.sql("SELECT * FROM rule_results").pl()
        db.replace_table(con, "rule_results", frame.with_columns(selection(policy)[1]))
    finally:
        con.close()


def test_reading_only_triggerable_patients_plans_as_the_whole_region(tmp_path):
    """The step reads only patients the selection can trigger (a stored clinical criterion or
    the region's DLCN cut-off); the plan, files and counts equal the whole-region plan."""
    from fh_screen.stages.rules.results import Policy

    rows, people = small_region()
    rows += [
        f.rule("low", dlcn_points=2, simon_broome="unlikely", lab_flag=False),      # no criterion
        f.rule("model_only", dlcn_points=1, simon_broome="unlikely", lab_flag=False),  # high probability alone
        f.rule("model_adds", dlcn_points=4, simon_broome="unlikely", lab_flag=False),  # criterion + probability
        f.rule("edge", dlcn_points=5, simon_broome="unlikely", lab_flag=False, medped="met"),
    ]
    people = f.patients_frame(rows, nogp={"practice_id": None})
    scores = pl.DataFrame(
        [{"patient_id": p, "probability": pr, "model_name": "m", "model_version": "2", "reasons": "",
          "reason_items": "[]"} for p, pr in [("model_only", 0.99), ("model_adds", 0.9), ("edge", 0.9), ("low", 0.2), ("p1", 0.5)]],
        schema=f.SCORE_SCHEMA, orient="row",
    )
    outputs = {}
    for name in ("whole", "narrowed"):
        db_path = f.build_db(tmp_path / f"{name}.duckdb", rows, patients=people, scores=scores)
        if name == "narrowed":
            _with_stored_criterion(db_path, Policy(dlcn_min_points=f.settings().selection.dlcn_min_points))
        ctx = f.context(tmp_path / name, db_path, cfg=settings())
        report = referrals_step(ctx)
        files = {p.relative_to(ctx.work_dir): p.read_bytes() for p in sorted(ctx.work_dir.rglob("*")) if p.is_file()}
        outputs[name] = (read(db_path, "SELECT * FROM referral_events ORDER BY patient_id"), files, report)
    (events_w, files_w, report_w), (events_n, files_n, report_n) = outputs["whole"], outputs["narrowed"]
    assert events_n.equals(events_w) and {"model_adds", "edge"} <= set(events_n["patient_id"])
    assert "model_only" not in set(events_n["patient_id"]) and "low" not in set(events_n["patient_id"])
    assert files_n == files_w
    assert report_n["scored"] == report_w["scored"] == len(rows)
    assert {k: v for k, v in report_n.items() if "seconds" not in k} == \
        {k: v for k, v in report_w.items() if "seconds" not in k}


def test_clinic_pages_count_as_rendering(tmp_path, monkeypatch):
    """The clinic pages' HTML and PDF are rendering, reported apart like the worklists'."""
    import time

    from fh_screen.outputs import clinics

    pdf = clinics.page_pdf
    monkeypatch.setattr(clinics, "page_pdf", lambda page: (time.sleep(0.1), pdf(page))[1])
    rows, people = small_region()
    db_path = f.build_db(tmp_path / "r.duckdb", rows, patients=people)
    report = referrals_step(f.context(tmp_path, db_path, cfg=settings()))
    assert report["clinic_pages"] == 2
    assert report["render_seconds"] >= 0.2
