"""The validate step on staged tables built directly in SQL: which rows move to
quarantine (at, below and above every cut-off), what is reported, and what stops a run."""

from __future__ import annotations

import json
import sys
from datetime import date

import polars as pl
import pytest

from fh_screen.store import db
from fh_screen.errors import DeliveryError
from fh_screen.stages.validate.step import validate_step
from validation_helpers import lab, make_context, patient, quarantine, stage, stg_rows

RULE = "gx.expect_column_values_to_be_in_set."
_NETWORK: list[str] = []
_RECORDING = [False]


def _audit(event: str, args) -> None:
    if _RECORDING[0] and event in ("socket.connect", "socket.getaddrinfo", "urllib.Request"):
        _NETWORK.append(event)


sys.addaudithook(_audit)   # records only while _RECORDING is set

# (row, changes to a plain LDL result of patient PSECRET1, expected rule or None)
LAB_CASES = [
    (1, dict(value=0.05), None),
    (2, dict(value=0.049), RULE + "value_plausible"),
    (3, dict(value=30.0), None),
    (4, dict(value=30.01), RULE + "value_plausible"),
    (5, dict(sampled_at="2026-11-23 23:59:00"), None),                        # the run date itself
    (6, dict(sampled_at="2026-11-24 00:00:00"), RULE + "sampled_not_future"),
    (7, dict(sampled_at="1970-01-01 00:00:00"), None),                        # on the birth date
    (8, dict(sampled_at="1969-12-31 00:00:00"), RULE + "sampled_after_birth"),
    (9, dict(patient_id="PSECRET2", sampled_at="2024-06-30 10:00:00"), None),  # on the death date
    (10, dict(patient_id="PSECRET2", sampled_at="2024-07-01 00:00:00"), RULE + "sampled_before_death"),
    (11, dict(unit_raw="mIU/L"), RULE + "unit_fits_analyte"),
    (12, dict(unit_raw=" MMOL/L"), None),                                     # spelled differently, same unit
    (13, dict(status="pending"), RULE + "status"),
    (14, dict(patient_id="PSECRET9"), RULE + "patient_known"),
    (15, dict(value=None, status="cancelled"), None),
    (16, dict(value=None), RULE + "value_present"),
    (17, dict(analyte="tsh", code="NPU03577", unit="mIU/L", unit_raw="mIU/L", value=0.0009), RULE + "value_plausible"),
    (18, dict(analyte="tsh", code="NPU03577", unit="mIU/L", unit_raw="mIU/L", value=0.001), None),
    (19, dict(value=99.0, sampled_at="2027-01-01 00:00:00"), RULE + "value_plausible"),  # two rules: first wins
]


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("validated")
    ctx = make_context(tmp_path)
    stage(ctx, "patients", [
        patient("PSECRET1", birth_date=date(1970, 1, 1)),
        patient("PSECRET2", birth_date=date(1960, 1, 1), deceased_date=date(2024, 6, 30)),
        patient("PSECRET3", birth_date=date(2027, 1, 1)),               # born after the run date
        patient("PSECRET4", birth_date=date(1899, 12, 31)),
        patient("PSECRET5", birth_date=date(1900, 1, 1), sex="U"),
    ])
    stage(ctx, "lab_results", [lab(f"R{row}", "PSECRET1", _row=row, **changes) for row, changes, _ in LAB_CASES])
    _RECORDING[0] = True
    try:
        report = validate_step(ctx)
    finally:
        _RECORDING[0] = False
    return ctx, report


def test_validation_makes_no_network_calls(validated):
    assert _NETWORK == []


def test_exactly_the_failing_lab_rows_move_to_quarantine(validated):
    ctx, _ = validated
    expected = {row: rule for row, _, rule in LAB_CASES if rule}
    got = {row: rule for _, row, _, rule, _, _ in quarantine(ctx, "lab_results")}
    assert got == expected
    assert stg_rows(ctx, "lab_results") == [row for row, _, rule in LAB_CASES if rule is None]


def test_a_row_breaking_two_rules_is_quarantined_once_with_both_reasons(validated):
    ctx, _ = validated
    (row,) = [q for q in quarantine(ctx, "lab_results") if q[1] == 19]
    assert row[4] == "value is outside the plausible range for this analyte; sample date is after the run date"


def test_patient_dates_at_and_beyond_their_limits(validated):
    ctx, _ = validated
    got = {key: rule for _, _, key, rule, _, _ in quarantine(ctx, "patients")}
    assert got == {"PSECRET3": RULE + "birth_not_future", "PSECRET4": RULE + "birth_plausible"}


def test_quarantine_rows_keep_raw_values_and_never_name_the_patient_in_the_reason(validated):
    ctx, _ = validated
    for table, row, key, rule, reason, raw in quarantine(ctx):
        assert "PSECRET" not in reason
        assert json.loads(raw)["patient_id"].startswith("PSECRET")
        assert "_row" not in json.loads(raw)


def test_counts_outputs_and_docs(validated):
    ctx, report = validated
    n_bad = sum(1 for *_, rule in LAB_CASES if rule)
    assert ctx.manifest["tables"]["lab_results"]["quarantined"] == n_bad
    assert ctx.manifest["tables"]["patients"]["quarantined"] == 2
    csv = pl.read_csv(ctx.work_dir / "quarantine.csv", infer_schema=False)
    assert csv.columns == ["table", "row_number", "row_key", "rule", "reason", "raw"]
    assert csv.height == n_bad + 2
    summary = json.loads((ctx.work_dir / "quality" / "validation_summary.json").read_text())
    labs = summary["tables"]["lab_results"]
    assert labs["rows_quarantined"] == labs["quarantined_total"] == n_bad
    assert labs["received"] == len(LAB_CASES)
    assert labs["expectations_run"] == labs["passed"] + labs["failed"] == len(labs["expectations"])
    failed = {e["rule"]: e["unexpected_count"] for e in labs["expectations"] if not e["success"]}
    assert failed[RULE + "value_plausible"] == 4
    assert report["backend"] == "duckdb-sql" and report["warnings"] == []
    index = ctx.work_dir / "quality" / "index.html"
    assert index.exists() and (index.stat().st_mode & 0o777) == 0o600
    pages = [p.read_text(encoding="utf-8") for p in (ctx.work_dir / "quality").rglob("*.html")]
    assert len(pages) >= 5 and not any("PSECRET" in page for page in pages)
    assert (ctx.work_dir / "quarantine.csv").stat().st_mode & 0o777 == 0o600


def test_data_docs_compile_their_templates_once_per_process(validated):
    """The run's Data Docs were drawn by the shared views (their environment holds the
    compiled page and index templates), and any later site reuses them instead of compiling."""
    from fh_screen.stages.validate import gx_docs

    page, index = gx_docs.PageView(), gx_docs.IndexPageView()
    assert page.env is index.env
    compiled = {name for _, name in page.env.cache.keys()}
    assert {"page.j2", "index_page.j2"} <= compiled
    assert page.env.get_template("page.j2") is gx_docs.PageView().env.get_template("page.j2")


def _helper_relations(ctx) -> list[str]:
    con = db.connect(ctx.db_path, read_only=True)
    try:
        names = con.execute(
            "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()
    finally:
        con.close()
    return [n for (n,) in names if n.startswith("gx_")]


def test_helper_relations_are_removed(validated):
    ctx, _ = validated
    assert _helper_relations(ctx) == []


def test_a_retried_step_moves_nothing_more_and_counts_the_same(validated):
    ctx, _ = validated
    before = dict(ctx.manifest["tables"]["lab_results"])
    validate_step(ctx)
    assert ctx.manifest["tables"]["lab_results"] == before
    assert len(quarantine(ctx, "lab_results")) == before["quarantined"]


def test_empty_required_table_is_structural(tmp_path):
    ctx = make_context(tmp_path)
    stage(ctx, "patients", [patient("P1")])
    stage(ctx, "lab_results", [])
    with pytest.raises(DeliveryError, match="lab_results: the delivered file has no data rows"):
        validate_step(ctx)


def test_missing_staged_column_is_structural(tmp_path):
    ctx = make_context(tmp_path)
    stage(ctx, "patients", [patient("P1")])
    stage(ctx, "lab_results", [lab("R1", "P1")])
    con = ctx.connect()
    con.execute("ALTER TABLE stg_lab_results DROP COLUMN censored")
    con.close()
    with pytest.raises(DeliveryError, match="lab_results: required column.* censored"):
        validate_step(ctx)
    assert _helper_relations(ctx) == []


def _load(ctx, tables=("patients", "lab_results")):
    con = ctx.connect()
    for table in tables:   # what load would do
        con.execute(f"INSERT INTO {table} SELECT * EXCLUDE (_row), '{ctx.delivery_id}' FROM stg_{table}")
    con.close()


def test_drift_is_reported_not_fatal(tmp_path):
    first = make_context(tmp_path, delivery_id="d1", as_of=date(2026, 11, 22))
    stage(first, "patients", [patient(f"P{i}") for i in range(4)])
    stage(first, "lab_results", [lab(f"A{i}", f"P{i % 4}") for i in range(10)])
    assert validate_step(first)["warnings"] == []
    _load(first)

    second = make_context(tmp_path, delivery_id="d2")
    stage(second, "patients", [patient("P0")])
    stage(second, "lab_results", [
        lab("B1", "P0", unit_raw="mg/dL", value_raw="160", value=4.14),
        lab("B2", "P0", unit_raw="mg/dL", value_raw="170", value=4.4),
        lab("B3", "P0", analyte="tsh", code="NPU03577", unit="mIU/L", unit_raw="mIU/L", value=2.0),
    ])
    warnings = validate_step(second)["warnings"]
    # patients arrive whole every night: 1 of 4 is a shrunken register extract
    assert any(w.startswith("patients: 1 rows received, below 50%") for w in warnings), warnings
    # lab results are the day's events: the first night is never held against the history load
    assert not any(w.startswith("lab_results:") and "rows received" in w for w in warnings), warnings
    assert any("code NPU01568 now has 100% of its results in 'mg/dl'" in w for w in warnings), warnings
    assert any("analyte code NPU03577 (tsh) appears for the first time" in w for w in warnings), warnings
    assert second.manifest["tables"]["lab_results"]["quarantined"] == 0
    summary = json.loads((second.work_dir / "quality" / "validation_summary.json").read_text())
    assert summary["warnings"] == warnings


@pytest.mark.parametrize("third_night, warned", [(1, True), (2, False), (3, False)])
def test_night_volume_is_compared_with_the_night_before(tmp_path, third_night, warned):
    """4 results on night 2, then 1 (below half: warned), 2 (exactly half) or 3 (above)."""
    for k, (delivery, results) in enumerate((("d1", 40), ("d2", 4), ("d3", third_night))):
        ctx = make_context(tmp_path, delivery_id=delivery, as_of=date(2026, 11, 22 + k))
        stage(ctx, "patients", [patient(f"P{i}") for i in range(4)])
        stage(ctx, "lab_results", [lab(f"{delivery}-{i}", f"P{i % 4}") for i in range(results)])
        warnings = validate_step(ctx)["warnings"]
        _load(ctx)
    volume = [w for w in warnings if w.startswith("lab_results:") and "rows received" in w]
    assert volume == ([f"lab_results: {third_night} rows received, below 50% of the previous delivery (4)"]
                      if warned else [])
