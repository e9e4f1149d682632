"""The lipid clinic's view: queue.csv, the clinic pages, and their agreement with the
worklists and the referral ledger."""

import csv
import re
import stat
import sys
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.config import Clinic  # noqa: E402
from fh_screen.outputs import clinics  # noqa: E402
from fh_screen.outputs import worklists  # noqa: E402
from fh_screen.stages.referrals.step import referrals_step  # noqa: E402

AS_OF = f.AS_OF


def region():
    rows = [f.rule(f"p{i}", dlcn_points=15 - i, practice_id=("P1" if i % 2 else "P2")) for i in range(9)]
    rows += [f.rule("far", dlcn_points=9), f.rule("nogp", practice_id=None, dlcn_points=6),
             f.rule("check", route="check_secondary_cause_first", secondary_cause="TSH 14 mIU/L on 2025-03-02")]
    people = f.patients_frame(rows, nogp={"practice_id": None}, far={"postcode": "9000"})
    scores = pl.DataFrame({"patient_id": [r["patient_id"] for r in rows[:6]],
                           "probability": [0.9, 0.7, 0.55, 0.35, 0.25, 0.1], "model_name": "fh_gbm",
                           "model_version": "1", "reasons": "", "reason_items": "[]"})
    return rows, people, scores


def settings():
    return f.settings(clinics=[
        Clinic(clinic_id="LK", name="Lipidklinik Nord", weekly_capacity=3, postcodes=["5"]),
        Clinic(clinic_id="LS", name="Lipidklinik Syd", weekly_capacity=2, postcodes=["9"]),
    ])


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def two_nights(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("queue")
    rows, people, scores = region()
    db_path = f.build_db(tmp / "r.duckdb", rows, patients=people, scores=scores)
    referrals_step(f.context(tmp, db_path, cfg=settings()))
    ctx = f.context(tmp, db_path, AS_OF + timedelta(days=1), cfg=settings())
    report = referrals_step(ctx)
    return ctx, db_path, report


def test_queue_worklists_and_ledger_agree(two_nights):
    ctx, db_path, report = two_nights
    queue = read_csv(ctx.work_dir / "queue.csv")
    con = duckdb.connect(str(db_path), read_only=True)
    ledger = con.sql("SELECT patient_id, status FROM referral_ledger").pl()
    tonight = con.sql("SELECT patient_id, event, clinic_id FROM referral_events WHERE as_of = ?",
                      params=[ctx.as_of]).pl()
    con.close()
    queued_ids = {r["patient_id"] for r in queue}
    assert queued_ids, "the test region must have a waiting list"
    assert queued_ids == set(ledger.filter(pl.col("status") == "queued")["patient_id"])
    assert queued_ids == set(tonight.filter(pl.col("event") == "queued")["patient_id"])
    assert len(queue) == len(queued_ids) == report["queue_csv_rows"]
    listed = {r["patient_id"] for r in read_csv(ctx.work_dir / "referrals.csv")}
    on_worklists = {r["patient_id"] for p in (ctx.work_dir / "worklists").glob("*.csv") for r in read_csv(p)}
    assert listed == on_worklists and not queued_ids & on_worklists
    # each worklist counts the practice's waiting patients against the week of their place
    for page in (ctx.work_dir / "worklists").glob("*.html"):
        practice = page.stem
        weeks = {}
        for r in queue:
            if r["practice_id"] == practice:
                weeks[r["expected_week"]] = weeks.get(r["expected_week"], 0) + 1
        text = page.read_text()
        for week, n in weeks.items():
            label = worklists.week_label(date.fromisoformat(week), "da") if week else None
            assert label is None or label in text, (practice, week)
        assert sum(weeks.values()) == sum(r["practice_id"] == practice for r in queue)
    # each clinic page lists exactly its queue rows, in order
    for clinic_id in ("LK", "LS"):
        mine = [r for r in queue if r["clinic_id"] == clinic_id]
        assert [int(r["queue_position"]) for r in mine] == list(range(1, len(mine) + 1))
        html = (ctx.work_dir / "clinics" / f"{clinic_id}.html").read_text()
        if mine:
            assert f"{len(mine)} patients wait for a place at this clinic" in html
        else:                                   # an empty list says so, with no "0 patients" or forecast of 0
            assert "Nobody is waiting for this clinic." in html and "0 patients wait" not in html
        positions = [html.index(r["patient_id"]) for r in mine]
        assert positions == sorted(positions)


def test_queue_rows_carry_what_a_clinic_needs(two_nights):
    ctx, _, _ = two_nights
    queue = read_csv(ctx.work_dir / "queue.csv")
    assert list(queue[0]) == clinics.QUEUE_COLUMNS
    for r in queue:
        assert date.fromisoformat(r["first_selected_on"]) <= ctx.as_of
        assert int(r["days_waiting"]) == (ctx.as_of - date.fromisoformat(r["first_selected_on"])).days
        assert r["route"] == "refer_lipid_clinic" and r["reasons"]
        assert r["flow"] in ("prospective", "backlog")
        assert r["expected_week"] == "" or date.fromisoformat(r["expected_week"]) >= ctx.as_of - timedelta(days=7)
        assert r["probability_band"] in {"0-20%", "20-40%", "40-60%", "60-80%", "80-100%", "not scored"}
    waited = [r for r in queue if r["days_waiting"] == "1"]
    assert waited, "patients queued on the first night have waited a day"


def test_files_are_owner_only(two_nights):
    ctx, _, _ = two_nights
    paths = [ctx.work_dir / "queue.csv", *sorted((ctx.work_dir / "clinics").iterdir())]
    assert {p.name for p in paths[1:]} == {"LK.html", "LK.pdf", "LS.html", "LS.pdf"}
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (ctx.work_dir / "clinics" / "LK.pdf").read_bytes()[:5] == b"%PDF-"


def test_clinic_page_shows_this_weeks_referrals_and_the_forecast(two_nights):
    ctx, _, report = two_nights
    html = (ctx.work_dir / "clinics" / "LK.html").read_text()
    assert "3 of 3 places" in html                     # the week's places went on night 1
    assert "Decision support for clinicians, not a diagnosis" in html
    figures = next(f for f in report["selection_by_clinic"] if f["clinic_id"] == "LK")
    waiting = sum(r["clinic_id"] == "LK" for r in read_csv(ctx.work_dir / "queue.csv"))
    weeks = clinics.weeks_to_clear(waiting, 3, figures["expected_prospective_weekly"])
    shown = "never" if weeks is None else str(weeks)
    assert re.search(rf'<td class="n">3 \(configured\)</td>\s*<td class="n">{shown}</td>', html)


@pytest.mark.parametrize("waiting, capacity, inflow, weeks", [
    (0, 3, 5, 0), (10, 3, 1, 5), (10, 3, 3, None), (10, 0, 0, None), (9, 3, 0, 3), (10, 12, 2, 1),
])
def test_weeks_to_clear(waiting, capacity, inflow, weeks):
    assert clinics.weeks_to_clear(waiting, capacity, inflow) == weeks


def test_expected_cases_by_week_sum_the_probabilities():
    w1, w2 = AS_OF, AS_OF + timedelta(days=7)
    rows = clinics.expected_by_week([
        {"expected_week": w2, "probability": 0.4}, {"expected_week": w1, "probability": 0.9},
        {"expected_week": w1, "probability": 0.5}, {"expected_week": None, "probability": None},
        {"expected_week": w2, "probability": None},
    ])
    assert rows == [{"week": w1, "patients": 2, "expected_fh": 1.4}, {"week": w2, "patients": 2, "expected_fh": 0.4},
                    {"week": None, "patients": 1, "expected_fh": None}]


@pytest.mark.parametrize("p, band", [(None, "not scored"), (0.0, "0-20%"), (0.199, "0-20%"), (0.2, "20-40%"),
                                     (0.6, "60-80%"), (0.8, "80-100%"), (1.0, "80-100%")])
def test_probability_bands_follow_the_calibration_bins(p, band):
    frame = pl.DataFrame({"p": [p]}, schema={"p": pl.Float64})
    assert frame.select(clinics.probability_band(pl.col("p"))).to_series()[0] == band


def test_no_probability_reads_as_certainty(tmp_path):
    """queue.csv rounds as the worklist CSVs do and stays within 0.01-0.99; the clinic page
    says "> 99 %" and "< 1 %" rather than 100% and 0%."""
    rows, people, scores = region()
    scores = scores.with_columns(pl.Series("probability", [0.999, 0.996, 0.004, 0.0004, 0.5, 0.123456]))
    db_path = f.build_db(tmp_path / "r.duckdb", rows, patients=people, scores=scores)
    ctx = f.context(tmp_path, db_path, cfg=settings())
    referrals_step(ctx)
    queue = read_csv(ctx.work_dir / "queue.csv")
    shown = [r["probability"] for r in queue if r["probability"]]
    assert shown, "the queue must hold scored patients"
    for text in shown:
        assert 0.01 <= float(text) <= 0.99 and len(text.split(".")[-1]) <= 2, text
    pages = "".join(p.read_text() for p in (ctx.work_dir / "clinics").glob("*.html"))
    assert not re.search(r">\s*(0|100) ?%\s*<", pages)
