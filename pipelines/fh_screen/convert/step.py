"""``convert``: a folder of register extracts -> one delivery in the contract's format.

The one edge of the converter: it finds and reads the source files (``read``), runs the
pure mappings (``people``, ``events``), accounts for every row (``ledger``) and writes the
delivery through ``fh_screen.store.files`` (owner-only files). The delivery is built in a
temporary folder next to ``out`` and renamed into place, so a failed conversion leaves
no half delivery behind and a rerun replaces the previous one.

Written next to the contract tables:
    ``convert_manifest.json``  per source table: files, read, converted, set aside (by
                               reason); notes; output row counts. No patient data.
    ``set_aside.csv``          one line per set-aside row: source table, file, row, reason.

Tables with no register source (family history, clinic outcomes, contacts) and the
region's own list of patients' GP practice and postcode (``patient_practice``) are taken
from files in the contract's format in the same folder, when present (docs/registers.md).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl

from fh_screen.convert import events, people
from fh_screen.convert import fields as f
from fh_screen.convert.layout import Layout, load_layout
from fh_screen.convert.ledger import Ledger
from fh_screen.convert.read import SourceFile, find_sources, read_raw, read_table
from fh_screen.errors import DeliveryError
from fh_screen.store.files import DIR_MODE, ensure_dir, write_bytes, write_text

MANIFEST = "convert_manifest.json"
SET_ASIDE = "set_aside.csv"
CONTRACT_TABLES = ("family_history", "clinic_outcomes", "contacts")
"""No register holds these: they stay in the contract's own CSV next to the extracts."""
PRACTICE_TABLE = "patient_practice"
"""patient_id, practice_id, postcode: the region's own list (no research register has it)."""
CONTRACT_FOR_LAB_SYSTEM = ("patients", "medications", "diagnoses", "relations")
"""A lab system exports lab results only; a MedCom delivery brings these in contract form."""
PATIENT_COLUMNS = ["patient_id", "birth_date", "sex", "practice_id", "postcode", "deceased_date", "moved_out_date"]


def convert(layout_name: str, in_dir: Path, out_dir: Path) -> dict:
    """Convert the register extracts in ``in_dir`` into a contract delivery at ``out_dir``.

    Raises:
        UserError: unknown layout, missing required table or column, unreadable file,
            or VNDS delivered together with its 2026 successors. One line, naming the file
            and column, never a value.

    Returns:
        The manifest (also written to ``out_dir/convert_manifest.json``).
    """
    layout = load_layout(layout_name)
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    sources = find_sources(in_dir, layout)
    ledger = Ledger()
    tables: dict[str, pl.DataFrame] = {}
    copies: dict[str, Path] = {}
    if layout.people == "contract":
        for name in CONTRACT_FOR_LAB_SYSTEM:
            path = _contract_file(in_dir, name, required=name == "patients")
            if path is not None:
                copies[name] = path
    else:
        _people(layout, sources, in_dir, ledger, tables)
    _labs(layout, sources, ledger, tables)
    if layout.medications != "contract":
        _medications(layout, sources, ledger, tables)
    if layout.people != "contract":
        _diagnoses(layout, sources, ledger, tables)
    for name in CONTRACT_TABLES:
        path = _contract_file(in_dir, name)
        if path is not None:
            copies[name] = path
    for name, path in copies.items():
        ledger.account(f"{name} (contract file)", read_raw(path).select(
            pl.lit(path.name).alias("_file"), pl.int_range(1, pl.len() + 1).alias("_row"), pl.lit(None, pl.String).alias("_reason")))
    manifest = {
        "layout": layout.layout,
        "title": layout.title,
        **ledger.report(),
        "outputs": {name: frame.height for name, frame in sorted(tables.items())} | {
            name: "copied as delivered" for name in sorted(copies)},
        "not_from_registers": [n for n in CONTRACT_TABLES if n not in copies],
        "note": "Decision support, not diagnosis: a converted delivery feeds the screening, it does not replace "
                "clinical review. Row numbers in set_aside.csv count data rows from 1 in each file.",
    }
    _publish(out_dir, tables, copies, ledger, manifest)
    return manifest


def _people(layout: Layout, sources: dict[str, list[SourceFile]], in_dir: Path, ledger: Ledger,
            tables: dict[str, pl.DataFrame]) -> None:
    key = "bef" if layout.people == "bef" else "cpr3_t_person"
    spec = layout.tables[key]
    rows = read_table(sources[key], spec, "person", "birth_date")
    codes = layout.sex_codes
    persons, accounted = people.latest_snapshot(rows, codes.get("male", []), codes.get("female", []))
    population_rows = None
    if "population" in sources:
        population_rows = read_table(sources["population"], layout.tables["population"], "person")
    patient_ids, population_accounted = people.study_population(persons, population_rows)
    if population_accounted is not None:
        ledger.account("population", population_accounted)
    deceased = moved = None
    if layout.deaths == "status":
        deceased, moved, left_out = people.status_events(persons, layout.status_codes.get("dead", []),
                                                          layout.status_codes.get("emigrated", []))
        accounted = accounted.with_columns(_reason=pl.when(
            pl.col("_reason").is_null() & pl.col("patient_id").is_in(left_out.implode()))
            .then(pl.lit(people.STATUS_WITHOUT_DATE)).otherwise(pl.col("_reason")))
        patient_ids = patient_ids.filter(~patient_ids.is_in(left_out.implode()))
    ledger.account(key, accounted)
    if layout.deaths == "dod" and "dod" in sources:
        deceased, dod_accounted = people.deaths(read_table(sources["dod"], layout.tables["dod"], "person", "death_date"), patient_ids)
        ledger.account("dod", dod_accounted)
    if layout.migrations == "vnds":
        moved = _migrations(layout, sources, patient_ids, ledger)
    practice = _practices(in_dir, patient_ids, ledger)
    patients = persons.filter(pl.col("patient_id").is_in(patient_ids.implode())).select("patient_id", "birth_date", "sex")
    for extra in (practice, deceased, moved):
        if extra is not None:
            patients = patients.join(extra, on="patient_id", how="left", maintain_order="left")
    tables["patients"] = patients.select(
        *(pl.col(c) if c in patients.columns else pl.lit(None, pl.String).alias(c) for c in PATIENT_COLUMNS))
    tables["relations"], missing_parents = people.relations(persons, patient_ids)
    ledger.note("parent rows whose parent is not in the population register (kept: relatives may be absent)", missing_parents)


def _migrations(layout: Layout, sources: dict[str, list[SourceFile]], patient_ids: pl.Series, ledger: Ledger) -> pl.DataFrame | None:
    split = [k for k in ("vnds_ind", "vnds_ud") if k in sources]
    if "vnds" in sources and split:
        files = ", ".join(s.path.name for k in ["vnds", *split] for s in sources[k])
        raise DeliveryError(f"{files}: VNDS delivered together with VNDS_IND/VNDS_UD; "
                            "send one or the other (Statistics Denmark: never combine them)")
    frames = []
    if "vnds" in sources:
        frames.append(("vnds", read_table(sources["vnds"], layout.tables["vnds"], "person", "direction", "event_date")))
    for key, direction in (("vnds_ind", "I"), ("vnds_ud", "U")):
        if key in sources:
            frame = read_table(sources[key], layout.tables[key], "person", "event_date")
            frames.append((key, frame.with_columns(direction=pl.lit(direction))))
    if not frames:
        return None
    combined = pl.concat([frame.with_columns(_table=pl.lit(key)) for key, frame in frames], how="diagonal")
    moved, accounted, returned = people.moved_out(combined, patient_ids)
    for key, _ in frames:
        ledger.account(key, accounted.filter(combined["_table"] == key))
    ledger.note("emigrations followed by a return (still resident)", returned)
    return moved


def _practices(in_dir: Path, patient_ids: pl.Series, ledger: Ledger) -> pl.DataFrame | None:
    path = _contract_file(in_dir, PRACTICE_TABLE)
    if path is None:
        return None
    raw = read_raw(path)
    for column in ("patient_id", "practice_id", "postcode"):
        if column not in raw.columns:
            raise DeliveryError(f"{path.name}: column {column} missing")
    work = raw.with_columns(patient_id=f.identifier(pl.col("patient_id")), _row=pl.int_range(1, pl.len() + 1),
                            _file=pl.lit(path.name), _order=pl.int_range(0, pl.len()))
    first = work.group_by("patient_id", maintain_order=True).agg(pl.col("_order").first())
    work = work.with_columns(_reason=pl.when(~pl.col("patient_id").is_in(patient_ids.implode()))
                             .then(pl.lit(people.NOT_IN_POPULATION))
                             .when(~pl.col("_order").is_in(first["_order"].implode()))
                             .then(pl.lit("second row for the same patient (the first is kept)")))
    ledger.account(PRACTICE_TABLE, work.select("_file", "_row", "_reason"))
    return work.filter(pl.col("_reason").is_null()).select(
        "patient_id",
        pl.col("practice_id").cast(pl.String).str.strip_chars().replace("", None),
        pl.col("postcode").cast(pl.String).str.strip_chars().replace("", None))


def _labs(layout: Layout, sources: dict[str, list[SourceFile]], ledger: Ledger, tables: dict[str, pl.DataFrame]) -> None:
    spec = layout.tables["lab"]
    when = ("sampling_datetime",) if "sampling_datetime" in spec.columns else ("sampling_date",)
    rows = read_table(sources["lab"], spec, "person", *when, "analysis_code", "value", "unit")
    tables["lab_results"], accounted = events.lab_results(rows)
    ledger.account("lab", accounted)


def _medications(layout: Layout, sources: dict[str, list[SourceFile]], ledger: Ledger, tables: dict[str, pl.DataFrame]) -> None:
    if "medications" not in sources:
        return
    spec = layout.tables["medications"]
    needed = ("person", "dispensed_on", "atc") + (("product",) if layout.medications == "lms" else ())
    rows = read_table(sources["medications"], spec, *needed)
    products = None
    if layout.medications == "lms":
        if "products" not in sources:
            files = "/".join(f.upper() for f in layout.tables["products"].files)
            raise DeliveryError(f"{files}: product table missing; strengths of LMS_EPIKUR come from it (joined on VNR)")
        products = read_table(sources["products"], layout.tables["products"], "product", "strength", "strength_unit")
    tables["medications"], accounted, notes, accounted_products = events.dispensings(rows, products)
    ledger.account("medications", accounted)
    if accounted_products is not None:
        ledger.account("products", accounted_products)
    for what, n in notes.items():
        ledger.note(what, n)


def _diagnoses(layout: Layout, sources: dict[str, list[SourceFile]], ledger: Ledger, tables: dict[str, pl.DataFrame]) -> None:
    frames = []
    for generation, datetime_contacts in (("lpr2", False), ("lpr3", True)):
        c_key, d_key = f"{generation}_contacts", f"{generation}_diagnoses"
        if c_key not in sources and d_key not in sources:
            continue
        if c_key not in sources or d_key not in sources:
            present, absent = (c_key, d_key) if c_key in sources else (d_key, c_key)
            files = ", ".join(s.path.name for s in sources[present])
            wanted = "/".join(f.upper() for f in layout.tables[absent].files)
            raise DeliveryError(f"{files}: delivered without {wanted}; diagnoses need both the contact and the diagnosis table")
        contacts = read_table(sources[c_key], layout.tables[c_key], "person", "contact", "contact_date")
        diags = read_table(sources[d_key], layout.tables[d_key], "contact", "code")
        out, c_acc, d_acc = events.diagnoses(contacts, diags, datetime_contacts)
        ledger.account(c_key, c_acc)
        ledger.account(d_key, d_acc)
        frames.append(out)
    if frames:
        tables["diagnoses"] = pl.concat(frames).sort("patient_id", "diagnosed_on", "icd10_code")


def _contract_file(in_dir: Path, name: str, required: bool = False) -> Path | None:
    hits = [p for p in sorted(in_dir.iterdir()) if p.is_file() and p.name.lower() in (f"{name}.csv", f"{name}.parquet")]
    if len(hits) > 1:
        raise DeliveryError(f"{' and '.join(p.name for p in hits)}: table {name} delivered twice")
    if required and not hits:
        raise DeliveryError(f"{name}.csv: required file missing (a lab-system export brings patients in the contract's format)")
    return hits[0] if hits else None


def _csv(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_csv(buf, date_format="%Y-%m-%d", datetime_format="%Y-%m-%dT%H:%M:%S", null_value="")
    return buf.getvalue()


def _publish(out_dir: Path, tables: dict[str, pl.DataFrame], copies: dict[str, Path], ledger: Ledger, manifest: dict) -> None:
    """Write everything into a temporary folder beside ``out_dir``, then rename it into place."""
    ensure_dir(out_dir.parent)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=out_dir.parent))
    os.chmod(work, DIR_MODE)
    try:
        for name, frame in tables.items():
            write_bytes(work / f"{name}.csv", _csv(frame))
        for name, path in copies.items():
            write_bytes(work / f"{name}.{path.name.rpartition('.')[2].lower()}", path.read_bytes())
        write_bytes(work / SET_ASIDE, _csv(ledger.set_aside_frame()))
        write_text(work / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        if out_dir.exists():
            old = out_dir.with_name(f".old-{out_dir.name}-{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(work, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise

