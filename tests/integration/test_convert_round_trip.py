"""Round trip: contract delivery -> register extracts -> ``convert`` -> run gives the same
staged tables and the same referrals as the contract delivery itself (both layouts).

The region is small (300 people) so the two full runs per layout stay within seconds.
The generator settings in ``fixtures/registers/round_trip_params.yaml`` make the contract
delivery register-shaped where a register has no choice: every parent linked, no result
corrected or cancelled (a register carries no result status).

Compared columns: every staged column except ``_row`` (file order differs),
``result_id`` (the lab register has no row id; the converter makes one from a hash)
and ``icd10_raw`` (the register always spells codes the Danish way, ``DI219``, where the
contract delivery mixes ``I21.9`` and ``DI219``; ``icd10_code`` is compared).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from fh_screen.app.run import prepare, run
from fh_screen.config import load_settings
from fh_screen.convert import convert
from fh_screen.schemas import TABLES
from fh_screen.stages.ingest import step as ingest
from fh_screen.synth import generate

PARAMS = Path(__file__).resolve().parents[1] / "fixtures" / "registers" / "round_trip_params.yaml"
AS_OF = date(2026, 9, 30)   # a quarter end: the last population snapshot is the run date
N, SEED = 300, 11
NOT_COMPARED = {"_row", "result_id", "icd10_raw"}


def staged(extract: Path, db_path: Path, out: Path) -> dict[str, pl.DataFrame]:
    ctx = prepare(extract, db_path, out, AS_OF)
    ingest.stage_step(ctx)
    con = duckdb.connect(str(db_path), read_only=False)
    try:
        frames = {}
        for table in TABLES:
            name = f"stg_{table}"
            if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0]:
                frame = con.execute(f"SELECT * FROM {name}").pl()
                keep = [c for c in frame.columns if c not in NOT_COMPARED]
                frames[table] = frame.select(keep).sort(keep, nulls_last=True)
        quarantine = con.execute("SELECT table_name, rule FROM quarantine").pl() if con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'quarantine'").fetchone()[0] else None
    finally:
        con.close()
    if quarantine is not None:
        frames["quarantine (table, rule)"] = quarantine.group_by("table_name", "rule").len().sort("table_name", "rule")
    return frames


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """One region written in both layouts; its contract delivery staged and run once."""
    root = tmp_path_factory.mktemp("round_trip")
    made = {}
    for layout in ("dst", "sds"):
        summary = generate(out=root / layout, n_patients=N, seed=SEED, as_of=AS_OF, layout=layout, params_file=PARAMS)
        made[layout] = (Path(summary["extract_dirs"][0]), Path(summary["register_dir"]))
    generic = made["dst"][0]
    for path in generic.iterdir():  # the same seed gives the same contract delivery
        assert path.read_bytes() == (made["sds"][0] / path.name).read_bytes(), path.name
    want = staged(generic, root / "generic.duckdb", root / "generic-stage")
    referrals = run_referrals(generic, root / "generic-run")
    return root, made, want, referrals


def run_referrals(extract: Path, out_dir: Path) -> pl.DataFrame:
    run(extract_dir=extract, db_path=out_dir.with_suffix(".duckdb"), out_dir=out_dir, as_of=AS_OF, settings=load_settings())
    return pl.read_csv(out_dir / "referrals.csv", infer_schema=False).sort("patient_id")


@pytest.mark.parametrize("layout", ["dst", "sds"])
def test_register_round_trip_gives_the_same_staged_tables_and_referrals(region, layout):
    root, made, want, want_referrals = region
    converted = root / f"converted-{layout}"
    manifest = convert(layout, made[layout][1], converted)
    for name, counts in manifest["tables"].items():
        assert counts["read"] == counts["converted"] + counts["set_aside"], name
    # The quirks were there and were handled, not absent.
    assert manifest["tables"]["lab"]["reasons"]["text result (RESULTTYPE alfanumerisk): kept out of numeric parsing"] > 0
    if layout == "dst":
        assert len(manifest["tables"]["bef"]["files"]) > 4 and manifest["tables"]["bef"]["set_aside"] > 0
        assert manifest["notes"]["emigrations followed by a return (still resident)"] > 0

    got = staged(converted, root / f"{layout}.duckdb", root / f"{layout}-stage")
    assert set(got) == set(want)
    assert want["quarantine (table, rule)"].height > 0      # the injected faults travel through too
    for table, frame in want.items():
        assert frame.height > 0, table
        assert got[table].equals(frame), f"{table} differs after the {layout} round trip"

    referrals = run_referrals(converted, root / f"{layout}-run")
    assert want_referrals.height > 0
    assert referrals.equals(want_referrals)
