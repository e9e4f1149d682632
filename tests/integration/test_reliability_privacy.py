"""Privacy of a whole run on a synthetic region: logs name nobody, outputs are owner-only,
every run leaves an audit record, and an
erased patient is gone from the store and its ledgers with the reports still consistent.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import shutil
import stat
import warnings
from pathlib import Path

import duckdb
import pytest

from fh_screen.app import cli, privacy, run
from fh_screen.errors import UserError
from fh_screen.synth import generate
from reliability_helpers import NIGHT1, db_snapshot, out_snapshot

N_PATIENTS = 1500
CANARY_VALUES = [f"7.{i:02d}4193" for i in range(20)]   # planted lab values no log line can contain by chance


def _rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _write(path: Path, rows: list[dict], fields: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """A synthetic delivery with canary lab values, run once through ``fhscreen -v run``
    with every log record at INFO and above and all of stdout/stderr captured."""
    tmp = tmp_path_factory.mktemp("privacy")
    summary = generate(out=tmp / "synth", n_patients=N_PATIENTS, seed=11, as_of=NIGHT1, fmt="csv",
                       dialect="plain", nights=1, params_file=None)
    extract = Path(summary["extract_dirs"][0])
    labs = _rows(extract / "lab_results.csv")
    for row, value in zip((r for r in labs if r["status"] != "cancelled" and r["unit"] == "mmol/L"), CANARY_VALUES):
        row["value"] = value
    _write(extract / "lab_results.csv", labs, list(labs[0]))
    config = tmp / "settings.yaml"
    config.write_text("model:\n  enabled: false\n", encoding="utf-8")
    return {"tmp": tmp, "extract": extract, "config": config, "labs": labs}


@pytest.fixture(scope="module")
def whole_run(region):
    tmp = region["tmp"]
    db_path, out = tmp / "store.duckdb", tmp / "out"
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler, root = Keep(level=logging.INFO), logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, \
                contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            warnings.simplefilter("always")
            code = cli.main(["-v", "run", "--extract", str(region["extract"]), "--db", str(db_path), "--out",
                             str(out), "--as-of", NIGHT1.isoformat(), "--config", str(region["config"])])
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert code == 0, stderr.getvalue()
    text = "\n".join(
        [handler.format(r) for r in records if r.levelno >= logging.INFO]
        + [str(w.message) for w in caught] + [stdout.getvalue(), stderr.getvalue()]
    )
    return {"db": db_path, "out": out, "log": text, "records": records}


def test_logs_and_console_name_no_patient_and_no_result(region, whole_run):
    extract, text = region["extract"], whole_run["log"]
    assert any(r.name.startswith("fh_screen") for r in whole_run["records"]), "the run logged nothing to check"
    assert "step" in text and "outputs:" in text
    ids = {r["patient_id"] for r in _rows(extract / "patients.csv")}
    ids |= {r["relative_id"] for r in _rows(extract / "relations.csv")}
    contacts = _rows(extract / "contacts.csv")
    names = {c["full_name"] for c in contacts} | {c["address"] for c in contacts}
    values = set(CANARY_VALUES) | {r["value"] for r in region["labs"][::20] if len(r["value"]) >= 4}
    assert len(ids) > N_PATIENTS * 0.9 and len(names) > 100 and len(values) > 50
    found = [x for x in ids | names if re.search(rf"(?<![\w]){re.escape(x)}(?![\w])", text)]
    # Wall times ("done in 1.96 s") are the only numbers a log line may carry; drop them first.
    untimed = re.sub(r"\d+\.\d+ s\b", "", text)
    found += [v for v in values if re.search(rf"(?<![\d.]){re.escape(v)}(?![\d])", untimed)]
    assert not found, f"{len(found)} patient ids, names or result values in logs/console"


def test_every_output_is_owner_only(region, whole_run):
    out = whole_run["out"]
    modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    wrong = {str(p.relative_to(out.parent)): oct(m) for p, m in modes.items()
             if m != (0o700 if p.is_dir() else 0o600)}
    assert not wrong
    assert len(modes) > 5
    store = whole_run["db"]
    for path in (store, store.with_name(store.name + ".audit.jsonl")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_every_run_leaves_an_audit_record(region, whole_run):
    out, extract = whole_run["out"], region["extract"]
    record = json.loads((out / "audit.json").read_text(encoding="utf-8"))
    sha = lambda p: hashlib.sha256(p.read_bytes()).hexdigest()
    assert record["inputs"] == {p.name: sha(p) for p in sorted(extract.iterdir()) if p.is_file()}
    top = {p.name: sha(p) for p in sorted(out.iterdir()) if p.is_file() and p.name != "audit.json"}
    assert {k: v for k, v in record["outputs"].items() if not k.endswith("/")} == top and "referrals.csv" in top
    for folder, entry in ((k, v) for k, v in record["outputs"].items() if k.endswith("/")):
        inside = [p for p in (out / folder).iterdir() if p.is_file()]
        digest = hashlib.sha256("".join(sorted(sha(p) for p in inside)).encode()).hexdigest()
        assert entry == {"files": len(inside), "sha256": digest}, folder
    assert record["as_of"] == NIGHT1.isoformat() and record["code_version"] and record["recorded_at"]
    assert record["rules"], "rule versions missing"
    assert record["tables"]["patients"]["received"] == N_PATIENTS
    assert "model" in record
    lines = whole_run["db"].with_name(whole_run["db"].name + ".audit.jsonl").read_text().splitlines()
    assert json.loads(lines[-1]) == record
    ids = {r["patient_id"] for r in _rows(extract / "patients.csv")}
    blob = json.dumps(record)
    assert not [i for i in ids if i in blob]


def _tables_naming(db_path: Path, patient_id: str) -> dict[str, int]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        hits = {}
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
            "AND data_type IN ('VARCHAR', 'JSON')").fetchall()
        for table, column in columns:
            n = con.execute(f'SELECT count(*) FROM "{table}" WHERE contains("{column}", ?)', [patient_id]).fetchone()[0]
            if n:
                hits[f"{table}.{column}"] = n
        return hits
    finally:
        con.close()


def test_erasure_removes_one_patient_and_reports_stay_consistent(region, whole_run, tmp_path, capsys):
    """After ``fhscreen erase`` and a rerun on an extract without the patient, the store and
    every output equal those of a region that never held them."""
    extract = region["extract"]
    con = duckdb.connect(str(whole_run["db"]), read_only=True)
    try:
        patient = con.execute(
            "SELECT e.patient_id FROM referral_events e JOIN relations r ON r.patient_id = e.patient_id "
            "JOIN relations q ON q.relative_id = e.patient_id ORDER BY e.patient_id LIMIT 1").fetchone()[0]
    finally:
        con.close()
    store = tmp_path / "a" / "store.duckdb"
    store.parent.mkdir()
    shutil.copy2(whole_run["db"], store)
    assert len(_tables_naming(store, patient)) >= 4

    assert cli.main(["erase", "--db", str(store), "--patient-id", patient]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("erased ") and patient not in printed
    assert _tables_naming(store, patient) == {}
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM erasure_register").fetchone()[0] == 1
    finally:
        con.close()

    # The region removes the patient from its extracts too; the same night is rerun.
    without = tmp_path / "without" / extract.name
    for path in extract.iterdir():
        rows = _rows(path)
        fields = list(rows[0]) if rows else path.read_text(encoding="utf-8").splitlines()[0].split(",")
        _write(without / path.name, [r for r in rows if patient not in (r.get("patient_id"), r.get("relative_id"))],
               fields)
    never = tmp_path / "b" / "store.duckdb"
    cfg = run.load_settings(region["config"])
    run.run(without, store, tmp_path / "a" / "out", NIGHT1, settings=cfg)
    run.run(without, never, tmp_path / "b" / "out", NIGHT1, settings=cfg)
    # stg_* are scratch tables whose presence depends on history (checked for the id above).
    erased, clean = ({t: rows for t, rows in db_snapshot(s).items() if not t.startswith("stg_")} for s in (store, never))
    assert len(erased.pop("erasure_register")) == 1 and clean.pop("erasure_register") == []
    assert erased == clean
    assert out_snapshot(tmp_path / "a" / "out") == out_snapshot(tmp_path / "b" / "out")
    assert _tables_naming(store, patient) == {}
