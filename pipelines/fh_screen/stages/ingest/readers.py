"""Reading one delivery folder: which files, which CSV dialect, every value as text.

Everything is read as text first so identifiers keep their leading zeros and the
decimal mark can be judged per file (``normalise``); parsing into types happens after.
Problems that make a file unusable raise :class:`DeliveryError` with one line naming
the file and column, never the values in it (they may identify a patient).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from fh_screen.schemas import DATE, DATETIME, ID, NUMBER, TABLES, TableSpec
from fh_screen.errors import DeliveryError

FORMATS = ("csv", "parquet")
SNIFF_BYTES = 1 << 20          # the dialect is judged from the first MiB
HASH_CHUNK = 1 << 22
DELIMITERS = (",", ";", "\t", "|")
EXTRA = "_extra"               # catches fields beyond the header: a malformed row
ROW = "_row"                   # 1-based data row in the delivered file
# A well-formed multi-byte UTF-8 character: a file that has some is UTF-8, even where
# other bytes are not (a stray CP1252 byte), and is never re-decoded whole as CP1252.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
MIXED_ENCODING = "utf-8, with rows that are not"


@dataclass
class Delivered:
    """One delivered table as text columns, plus how it was read (for the manifest)."""

    table: str
    path: Path
    frame: pl.DataFrame        # String columns named as the contract, plus _row (and _extra for CSV)
    format: str
    delimiter: str | None = None
    encoding: str | None = None
    decimal: str | None = None  # configured mark, or None = decide from the values
    ignored_columns: tuple[str, ...] = ()
    replaced: bool = False      # bytes that are not UTF-8 were read as U+FFFD (rows quarantined)

    def report(self) -> dict:
        return {"format": self.format, "delimiter": self.delimiter, "encoding": self.encoding,
                "decimal": self.decimal}


def find_tables(extract_dir: Path) -> dict[str, Path]:
    """Map each delivered contract table to its file; refuse missing required or doubled tables."""
    if not extract_dir.is_dir():
        raise DeliveryError(f"{extract_dir.name}: delivery folder not found")
    by_name: dict[str, list[Path]] = {}
    for path in delivered_files(extract_dir):
        stem, _, suffix = path.name.lower().rpartition(".")
        if suffix in FORMATS and stem in TABLES:
            by_name.setdefault(stem, []).append(path)
    for table, paths in by_name.items():
        if len(paths) > 1:
            names = " and ".join(sorted(p.name for p in paths))
            raise DeliveryError(f"{names}: table {table} delivered twice; send exactly one file per table")
    for table, spec in TABLES.items():
        if spec.required and table not in by_name:
            raise DeliveryError(f"{table}.csv: required file missing (expected {table}.csv or {table}.parquet)")
    return {table: paths[0] for table, paths in sorted(by_name.items())}


def is_table_file(name: str) -> bool:
    """A file name of a contract table (``patients.csv``, ``lab_results.parquet`` ...)."""
    stem, _, suffix = name.lower().rpartition(".")
    return suffix in FORMATS and stem in TABLES


def delivered_files(extract_dir: Path) -> list[Path]:
    """The files of a delivery (hidden ones skipped), refusing a link that leaves the folder.

    A link inside a delivery could make a run load another region's file or hash a system
    file into the manifest. A link to a file inside the delivery folder is allowed. An
    unknown file is not named in the message (its name may be a patient's)."""
    root = extract_dir.resolve()
    found = []
    for path in sorted(extract_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_symlink() and root not in path.resolve().parents:
            what = path.name if is_table_file(path.name) else "a file that is not a contract table"
            raise DeliveryError(f"{what}: a link to outside the delivery folder; deliver the file itself")
        if path.is_file():
            found.append(path)
    return found


def input_record(hashes: dict[str, str]) -> dict[str, object]:
    """Input hashes for the manifest and the audit log: contract table files by name, any
    other files only as a count and one sha256 over their content hashes (a stray file may
    be named after a patient, and the audit log is kept for years)."""
    record: dict[str, object] = {n: h for n, h in hashes.items() if is_table_file(n)}
    unknown = sorted(h for n, h in hashes.items() if not is_table_file(n))
    if unknown:
        record["unknown_files"] = {"files": len(unknown),
                                   "sha256": hashlib.sha256("".join(unknown).encode("ascii")).hexdigest()}
    return record


def file_hashes(extract_dir: Path) -> dict[str, str]:
    """File name -> sha256 for each delivered file (hidden files skipped), streamed once.

    Only ``content_hash`` and ``input_record`` use it: file names never leave this module
    except for contract tables. A delivery is read for hashing only once per run."""
    hashes = {}
    for path in delivered_files(extract_dir):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(HASH_CHUNK):
                digest.update(chunk)
        hashes[path.name] = digest.hexdigest()
    return hashes


def content_hash(extract_dir: Path, hashes: dict[str, str] | None = None) -> str:
    """One sha256 over the delivery's sorted file names and their content hashes."""
    hashes = file_hashes(extract_dir) if hashes is None else hashes
    digest = hashlib.sha256()
    for name, file_digest in sorted(hashes.items()):
        digest.update(f"{name}\0{file_digest}\0".encode("utf-8"))
    return digest.hexdigest()


def read_table(table: str, path: Path, settings) -> Delivered:
    """Read one delivered file as text columns. ``settings`` is ``Settings.ingest``."""
    spec = TABLES[table]
    if path.stat().st_size == 0:
        raise DeliveryError(f"{path.name}: file is empty")
    if path.suffix.lower() == ".parquet":
        delivered = _read_parquet(spec, path)
    else:
        delivered = _read_csv(spec, path, settings)
    if spec.required and delivered.frame.height == 0:
        raise DeliveryError(f"{path.name}: required table has no data rows")
    return delivered


# --- CSV ---------------------------------------------------------------------------------


def _sniff_encoding(path: Path, sample: bytes, configured: str) -> str:
    """The encoding to try first. ``auto`` tries UTF-8 for every file: only a file with no
    UTF-8 character at all is read as CP1252 (``_read_csv``)."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in sample:
        raise DeliveryError(f"{path.name}: file is UTF-16 or binary, not text; export it as UTF-8")
    bom = sample.startswith(codecs.BOM_UTF8)
    if configured in ("utf-8", "auto"):
        return "utf-8-sig" if bom else "utf-8"
    return configured


def _decode(path: Path, data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DeliveryError(
            f"{path.name}: cannot be decoded as {encoding} (byte {exc.start}); export it as UTF-8"
        ) from None


def _header(path: Path, spec: TableSpec, text: str, configured: str) -> tuple[list[str], str]:
    """Column names (trimmed, lower case) and the delimiter, from the header line."""
    line = text.lstrip("\ufeff").split("\n", 1)[0].rstrip("\r")
    if not line.strip():
        raise DeliveryError(f"{path.name}: first line is empty; expected a header row")
    known = set(spec.column_names)
    candidates = DELIMITERS if configured == "auto" else (configured,)

    def names(delimiter: str) -> list[str]:
        try:
            return [n.strip().lower() for n in next(csv.reader([line], delimiter=delimiter))]
        except csv.Error:   # e.g. a stray carriage return inside the header line
            raise DeliveryError(f"{path.name}: header line cannot be read as CSV") from None

    delimiter = max(candidates, key=lambda d: (len(known & set(names(d))), line.count(d)))
    return names(delimiter), delimiter


def _read_csv(spec: TableSpec, path: Path, settings) -> Delivered:
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    encoding = _sniff_encoding(path, sample, settings.encoding)
    if b"\n" not in sample and len(sample) == SNIFF_BYTES:
        raise DeliveryError(f"{path.name}: header line is longer than {SNIFF_BYTES} bytes; not a CSV header")
    header_text = sample.decode("utf-8" if encoding.startswith("utf-8") else encoding, errors="replace")
    names, delimiter = _header(path, spec, header_text, settings.delimiter)
    _check_columns(path, spec, names)

    positional = [f"_c{i}" for i in range(len(names))]
    options = dict(
        has_header=False, skip_rows=1, separator=delimiter, quote_char='"', infer_schema=False,
        schema={**{c: pl.String for c in positional}, EXTRA: pl.String},
        missing_columns="insert", truncate_ragged_lines=True,
    )
    replaced = False
    try:
        frame = _polars_csv(path, encoding, options)
    except _NotUtf8:
        if settings.encoding != "auto":
            raise DeliveryError(f"{path.name}: not valid UTF-8 text; set ingest.encoding or export as UTF-8") from None
        data = path.read_bytes()
        if _UTF8_MULTIBYTE.search(data):
            # UTF-8 with stray bytes of another encoding: decided per row (staging quarantines
            # the rows with a replaced byte), never re-decoded whole.
            encoding, replaced = MIXED_ENCODING, True
            frame = _polars_csv(path, "utf-8", options, data.decode("utf-8", errors="replace").encode("utf-8"))
        else:
            encoding = "cp1252"
            frame = _polars_csv(path, encoding, options, data)
    frame = frame.rename(dict(zip(positional, names)))
    return Delivered(
        table=spec.name,
        path=path,
        frame=_conform(frame, spec),
        format="csv",
        delimiter=delimiter,
        encoding=encoding,
        decimal=None if settings.decimal == "auto" else settings.decimal,
        ignored_columns=tuple(n for n in names if n not in spec.column_names),
        replaced=replaced,
    )


class _NotUtf8(Exception):
    pass


def _polars_csv(path: Path, encoding: str, options: dict, data: bytes | None = None) -> pl.DataFrame:
    """polars reads UTF-8 straight from the file (or from ``data``, already UTF-8, when
    given with encoding utf-8); other encodings are transcoded in memory."""
    if encoding in ("utf-8", "utf-8-sig"):
        source: Path | bytes = path if data is None else data
    else:
        source = _decode(path, path.read_bytes() if data is None else data, encoding).encode("utf-8")
    try:
        return pl.read_csv(source, **options)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" in str(exc).lower() and isinstance(source, Path):
            raise _NotUtf8() from None
        raise DeliveryError(f"{path.name}: malformed CSV that cannot be split into rows (check quoting)") from None
    except (pl.exceptions.PolarsError, OSError):
        raise DeliveryError(f"{path.name}: malformed CSV that cannot be split into rows (check quoting)") from None


# --- Parquet -----------------------------------------------------------------------------

_TEXT_TYPES = (pl.String, pl.Categorical, pl.Enum, pl.Null)
_INT_TYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)
_ALLOWED = {
    ID: _TEXT_TYPES + _INT_TYPES,
    DATE: _TEXT_TYPES + (pl.Date, pl.Datetime),
    DATETIME: _TEXT_TYPES + (pl.Date, pl.Datetime),
    NUMBER: _TEXT_TYPES + _INT_TYPES + (pl.Float32, pl.Float64, pl.Decimal),
}
_KIND_WORDS = {ID: "an identifier", DATE: "a date", DATETIME: "a date or date-time", NUMBER: "a number"}


def _read_parquet(spec: TableSpec, path: Path) -> Delivered:
    try:
        frame = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError):
        raise DeliveryError(f"{path.name}: not a readable Parquet file") from None
    frame = frame.rename({c: c.strip().lower() for c in frame.columns})
    _check_columns(path, spec, frame.columns)
    casts = []
    for column in spec.columns:
        if column.name not in frame.columns:
            continue
        dtype = frame.schema[column.name]
        allowed = _ALLOWED.get(column.kind, _TEXT_TYPES)
        if not any(dtype == a or dtype.base_type() == a for a in allowed):
            raise DeliveryError(
                f"{path.name}: column {column.name} has Parquet type {dtype}, which cannot hold "
                f"{_KIND_WORDS.get(column.kind, 'text')}"
            )
        if dtype.base_type() == pl.Datetime:
            casts.append(pl.col(column.name).dt.strftime("%Y-%m-%d %H:%M:%S%.f"))
        else:
            casts.append(pl.col(column.name).cast(pl.String))
    frame = frame.with_columns(casts)
    return Delivered(
        table=spec.name,
        path=path,
        frame=_conform(frame, spec),
        format="parquet",
        decimal=".",
        ignored_columns=tuple(c for c in frame.columns if c not in spec.column_names),
    )


# --- shared ------------------------------------------------------------------------------


def _check_columns(path: Path, spec: TableSpec, names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen and name in spec.column_names:
            raise DeliveryError(f"{path.name}: column {name} appears twice in the header")
        seen.add(name)
    for column in spec.columns:
        if column.required_column and column.name not in seen:
            raise DeliveryError(f"{path.name}: required column {column.name} is missing")


def _conform(frame: pl.DataFrame, spec: TableSpec) -> pl.DataFrame:
    """Contract columns in contract order (absent optional ones as nulls), _row, _extra."""
    columns = [
        pl.col(c) if c in frame.columns else pl.lit(None, dtype=pl.String).alias(c)
        for c in spec.column_names
    ]
    extra = pl.col(EXTRA) if EXTRA in frame.columns else pl.lit(None, dtype=pl.String).alias(EXTRA)
    return frame.select(*columns, extra).with_row_index(ROW, offset=1).with_columns(
        pl.col(ROW).cast(pl.Int64)
    )
