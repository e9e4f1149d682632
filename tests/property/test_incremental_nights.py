"""Incremental nights equal full recomputation (Hypothesis).

A small synthetic region is loaded once. Each example then draws a chain of nightly
deliveries - new, corrected and cancelled lab results, dispensings, diagnoses, clinic
outcomes, relations, family history, deaths and erasures, for random patients, with gaps from one
day to over a year (birthdays, the end of treatment coverage and of the clinic's recent
window fall inside) - and processes it twice from the same starting database:

* **incremental**: the product's default (weekly full pass pushed out of the chain's reach),
  so every night recomputes only the patients ``store.changes`` selects;
* **full**: the incremental state is cleared before each night, so every night recomputes
  everyone.

After every night the per-patient tables, the scores, the referral and cascade ledgers and
the published outputs must be identical (outputs after the documented normalisations of
``tests/outputs_compare.py``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import outputs_compare  # noqa: E402

from fh_screen.app import run  # noqa: E402
from fh_screen.app.privacy import erase_patient  # noqa: E402
from fh_screen.config import IncrementalSettings, load_settings  # noqa: E402
from fh_screen.synth.generate import generate  # noqa: E402

BASE_DAY = date(2026, 11, 23)
SETTINGS = load_settings().model_copy(update={"incremental": IncrementalSettings(full_pass_days=3650)})
INDEX = st.integers(0, 10**6)
FACTOR = st.sampled_from([0.6, 0.9, 1.3, 1.8])

night = st.fixed_dictionaries({
    "gap": st.sampled_from([1, 2, 45, 101, 200, 366]),
    "new_labs": st.lists(st.tuples(INDEX, INDEX, FACTOR), min_size=1, max_size=5),        # template, patient, factor
    "corrections": st.lists(st.tuples(INDEX, FACTOR), max_size=2),
    "cancellations": st.lists(INDEX, max_size=2),
    "dispensings": st.lists(st.tuples(INDEX, INDEX), max_size=2),              # template, patient
    "diagnoses": st.lists(st.tuples(INDEX, st.sampled_from(["E78.0", "I21.9", "E03.9"])), max_size=2),
    "outcomes": st.lists(st.tuples(INDEX, st.sampled_from(["fh_genetic", "pending", "not_fh", "did_not_attend"])),
                         max_size=2),
    "relations": st.lists(st.tuples(INDEX, INDEX, st.sampled_from(["sibling", "parent", "child"])), max_size=2),
    "family_history": st.lists(st.tuples(INDEX, st.sampled_from(["tendon_xanthoma", "premature_chd_first_degree"])),
                               max_size=1),
    "deaths": st.lists(INDEX, max_size=1),
    "erasures": st.lists(INDEX, max_size=1),     # erased on request before the night runs
})


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """The synthetic region's history loaded into a database, and its delivered tables."""
    root = tmp_path_factory.mktemp("incremental")
    generate(root / "synth", 150, seed=11, as_of=BASE_DAY)
    extract = root / "synth" / "extracts" / BASE_DAY.isoformat()
    run.run(extract, root / "base.duckdb", root / "out_base", BASE_DAY, SETTINGS)
    tables = {p.stem: pl.read_csv(p, infer_schema=False) for p in extract.glob("*.csv")}
    return root / "base.duckdb", tables


def _delivery(folder: Path, day: date, spec: dict, tables: dict[str, pl.DataFrame], state: dict) -> None:
    """Write one night's delivery (full patients, new/changed rows of the other tables)."""
    sample = day - timedelta(days=1)
    patients = state["patients"]
    ids = patients["patient_id"].to_list()
    pick = lambda i: ids[i % len(ids)]  # noqa: E731
    labs, results = [], state["results"]
    # Censored results (">90") are delivered as text; new rows scale a numeric template.
    template_labs = tables["lab_results"].filter(pl.col("value").cast(pl.Float64, strict=False).is_not_null())
    for t, p, factor in spec["new_labs"]:
        row = template_labs.row(t % template_labs.height, named=True)
        state["next_id"] += 1
        row.update(result_id=f"N{state['next_id']:08d}", patient_id=pick(p), status="final",
                   sampled_at=f"{sample.isoformat()}T08:{state['next_id'] % 60:02d}:00",
                   value=f"{float(row['value']) * factor:.1f}")
        labs.append(row)
        results.append(row)
    # A correction scales a numeric result; a censored one (">90") is corrected as delivered text.
    for i, factor in spec["corrections"]:
        row = dict(results[i % len(results)])
        value = row["value"]
        try:
            value = f"{float(value) * factor:.1f}"
        except (TypeError, ValueError):
            pass
        row.update(status="corrected", value=value)
        labs.append(row)
    for i in spec["cancellations"]:
        row = dict(results[i % len(results)])
        row.update(status="cancelled")
        labs.append(row)
    for i in spec["deaths"]:
        patients = patients.with_columns(
            pl.when(pl.col("patient_id") == pick(i)).then(pl.lit(sample.isoformat()))
            .otherwise(pl.col("deceased_date")).alias("deceased_date"))
    state["patients"] = patients
    meds = tables["medications"]
    frames = {
        "patients": patients,
        "lab_results": pl.DataFrame(labs, schema=template_labs.schema),
        "medications": pl.DataFrame(
            [{**meds.row(t % meds.height, named=True), "patient_id": pick(p), "dispensed_on": sample.isoformat()}
             for t, p in spec["dispensings"]], schema=meds.schema),
        "diagnoses": pl.DataFrame([{"patient_id": pick(p), "icd10_code": code, "diagnosed_on": sample.isoformat()}
                                   for p, code in spec["diagnoses"]], schema=tables["diagnoses"].schema),
        "clinic_outcomes": pl.DataFrame(
            [{"patient_id": pick(p), "outcome_date": sample.isoformat(), "outcome": outcome,
              "gene": "LDLR" if outcome == "fh_genetic" else None} for p, outcome in spec["outcomes"]],
            schema=tables["clinic_outcomes"].schema),
        "relations": pl.DataFrame([{"patient_id": pick(a), "relative_id": pick(b), "relationship": kind}
                                   for a, b, kind in spec["relations"] if pick(a) != pick(b)],
                                  schema=tables["relations"].schema),
        "family_history": pl.DataFrame([{"patient_id": pick(p), "item": item, "recorded_on": sample.isoformat()}
                                        for p, item in spec["family_history"]],
                                       schema=tables["family_history"].schema),
    }
    folder.mkdir(parents=True)
    for name, frame in frames.items():
        if name in ("patients", "lab_results") or frame.height:
            frame.write_csv(folder / f"{name}.csv")


@settings(max_examples=2, deadline=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(chain=st.lists(night, min_size=2, max_size=3))
def test_a_chain_of_incremental_nights_equals_full_recomputation(region, chain):
    base_db, tables = region
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dbs = {"incremental": root / "incremental.duckdb", "full": root / "full.duckdb"}
        for db in dbs.values():
            shutil.copy(base_db, db)
        state = {"patients": tables["patients"], "results": tables["lab_results"].to_dicts(), "next_id": 0}
        day, modes = BASE_DAY, []
        for k, spec in enumerate(chain):
            day += timedelta(days=spec["gap"])
            extract = root / "extracts" / day.isoformat()
            _delivery(extract, day, spec, tables, state)
            for i in spec["erasures"]:
                for db in dbs.values():
                    with duckdb.connect(str(db)) as con:
                        erase_patient(con, state["patients"]["patient_id"][i % state["patients"].height], day)
            with duckdb.connect(str(dbs["full"])) as con:
                con.execute("DELETE FROM incr_steps")        # the full side forgets: everyone is recomputed
            manifests = {name: run.run(extract, db, root / f"out_{name}_{k}", day, SETTINGS)
                         for name, db in dbs.items()}
            modes.append(manifests["incremental"]["steps"]["features"]["mode"])
            assert manifests["full"]["steps"]["features"]["mode"] == "full"
            assert outputs_compare.table_differences(dbs["incremental"], dbs["full"]) == [], f"night {k + 1}"
            assert outputs_compare.output_differences(root / f"out_incremental_{k}", root / f"out_full_{k}",
                                                     ignore_mode=True) == []
        assert set(modes) == {"incremental"}


def test_a_full_pass_in_family_partitions_equals_one_pass(region, tmp_path):
    """Whole families per partition: the features, everything after them and the outputs are
    those of one pass over the region (150 people in partitions of about 40). Only the
    settings (partition size) and so the audit record's hash of them differ."""
    base_db, _ = region
    extract = base_db.parent / "synth" / "extracts" / BASE_DAY.isoformat()
    small = SETTINGS.model_copy(update={"incremental": IncrementalSettings(full_pass_days=3650, partition_people=40)})
    manifest = run.run(extract, tmp_path / "parts.duckdb", tmp_path / "out_parts", BASE_DAY, small)
    parts = manifest["steps"]["features"]["partitions"]
    assert len(parts) == 4 and sum(p["people"] for p in parts) == 150
    assert outputs_compare.table_differences(tmp_path / "parts.duckdb", base_db) == []
    assert outputs_compare.output_differences(tmp_path / "out_parts", base_db.parent / "out_base",
                                              ignore_mode=True) == ["audit.json", "settings.json"]
