"""Reading one delivery folder: which files, which CSV dialect, every value as text.

Everything is read as text first so identifiers keep their leading zeros and the
decimal mark can be judged per file (``normalise``); parsing into types happens after.
A file is read in batches (``Delivered.batches``): a CSV about ``BATCH_BYTES`` of text at
a time, cut only at a line end outside quotes, so memory does not grow with the file.
Problems that make a file unusable raise :class:`DeliveryError` with one line naming
the file and column, never the values in it (they may identify a patient).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import polars as pl

from fh_screen.schemas import DATE, DATETIME, ID, NUMBER, TABLES, TableSpec
from fh_screen.errors import DeliveryError

FORMATS = ("csv", "parquet")
SNIFF_BYTES = 1 << 20          # the dialect is judged from the first MiB
# Text per batch: a 32 MiB batch of lab rows (about 450,000) is parsed in about 0.4 GB.
BATCH_BYTES = 32 << 20
HASH_CHUNK = 1 << 22
DELIMITERS = (",", ";", "\t", "|")
EXTRA = "_extra"               # catches fields beyond the header: a malformed row
ROW = "_row"                   # 1-based data row in the delivered file
# A well-formed multi-byte UTF-8 character: a file that has some is UTF-8, even where
# other bytes are not (a stray CP1252 byte), and is never re-decoded whole as CP1252.
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
MIXED_ENCODING = "utf-8, with rows that are not"


class Reread(Exception):
    """The file turned out to be in another encoding than its first batches were read in
    (UTF-8 with stray bytes of another encoding further on): read it again from the start."""


@dataclass
class Delivered:
    """One delivered table: how it is read (for the manifest) and its rows in batches."""

    table: str
    path: Path
    format: str
    delimiter: str | None = None
    encoding: str | None = None
    decimal: str | None = None  # configured mark, or None = decide from the values
    ignored_columns: tuple[str, ...] = ()
    replaced: bool = False      # bytes that are not UTF-8 were read as U+FFFD (rows quarantined)
    names: tuple[str, ...] = ()  # CSV: the header's column names, in file order
    guess_encoding: bool = False  # CSV: the encoding may still change (``ingest.encoding: auto``)
    pieces: dict[int, tuple[int, int]] = field(default_factory=dict)  # batch -> (byte offset, bytes) or (row, rows)

    def report(self) -> dict:
        return {"format": self.format, "delimiter": self.delimiter, "encoding": self.encoding,
                "decimal": self.decimal}

    def batches(self, batch_bytes: int = BATCH_BYTES) -> Iterator[tuple[int, pl.DataFrame]]:
        """(batch number, rows) in file order: String columns named as the contract, plus
        _row (numbered through the whole file) and _extra for CSV.

        Raises:
            Reread: the encoding changed after some batches were handed out; every batch
                must be read again (``encoding`` and ``replaced`` now say how).
        """
        self.pieces.clear()
        if self.format == "parquet":
            return _parquet_batches(self, batch_bytes)
        return _csv_batches(self, batch_bytes)

    def rows_again(self, number: int, first_row: int, rows: list[int]) -> pl.DataFrame:
        """The rows numbered ``rows`` (_row, ascending) of batch ``number`` of the last
        ``batches`` pass, whose first row was ``first_row``, read again from the file."""
        if self.format == "parquet":
            start, size = self.pieces[number]
            frame = _parquet_slice(self, start, size)
            return frame.filter(pl.col(ROW).is_in(pl.Series(rows, dtype=pl.Int64).implode()))
        return _csv_rows_again(self, number, first_row, rows)


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
    """Open one delivered file: its dialect and columns, checked; the rows come from
    ``Delivered.batches``. ``settings`` is ``Settings.ingest``."""
    spec = TABLES[table]
    if path.stat().st_size == 0:
        raise DeliveryError(f"{path.name}: file is empty")
    if path.suffix.lower() == ".parquet":
        return _read_parquet(spec, path)
    return _read_csv(spec, path, settings)



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


def _decode(path: Path, data: bytes, encoding: str, offset: int) -> str:
    """``data`` (found at byte ``offset`` of the file) as text; the error names the byte."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DeliveryError(
            f"{path.name}: cannot be decoded as {encoding} (byte {offset + exc.start}); export it as UTF-8"
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
    delivered = Delivered(
        table=spec.name,
        path=path,
        format="csv",
        delimiter=delimiter,
        encoding=encoding,
        decimal=None if settings.decimal == "auto" else settings.decimal,
        ignored_columns=tuple(n for n in names if n not in spec.column_names),
        names=tuple(names),
        guess_encoding=settings.encoding == "auto",
    )
    if encoding.startswith("utf-8") and not _utf8_so_far(sample, len(sample) < SNIFF_BYTES):
        _other_encoding(delivered, BATCH_BYTES)   # decided now for nearly every file that is not UTF-8
    return delivered


def _utf8_so_far(sample: bytes, whole: bool) -> bool:
    """True if the first bytes are UTF-8 (a character cut at the end of the sample is fine)."""
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return not whole and exc.reason == "unexpected end of data"
    return True


def _csv_batches(delivered: Delivered, batch_bytes: int) -> Iterator[tuple[int, pl.DataFrame]]:
    spec = TABLES[delivered.table]
    positional = [f"_c{i}" for i in range(len(delivered.names))]
    first_row = 1
    for number, (offset, chunk) in enumerate(_line_chunks(delivered.path, batch_bytes)):
        delivered.pieces[number] = (offset, len(chunk))
        try:
            frame = _parse_chunk(delivered, _transcoded(delivered, chunk, offset), number == 0, positional)
        except _NotUtf8:
            _other_encoding(delivered, batch_bytes)
            if number > 0 and delivered.replaced:
                raise Reread() from None
            frame = _parse_chunk(delivered, _transcoded(delivered, chunk, offset), number == 0, positional)
        yield number, _conform(frame.rename(dict(zip(positional, delivered.names))), spec, first_row)
        first_row += frame.height


def _csv_rows_again(delivered: Delivered, number: int, first_row: int, rows: list[int]) -> pl.DataFrame:
    """A few rows of one piece. Where the piece has no quote and no blank line, each row is
    one line, and only the lines asked for are parsed (a repeated key's earlier rows:
    parsing every piece of a 10-million-row file again cost 4 CPU seconds)."""
    offset, length = delivered.pieces[number]
    with delivered.path.open("rb") as handle:
        handle.seek(offset)
        chunk = _transcoded(delivered, handle.read(length), offset)
    positional = [f"_c{i}" for i in range(len(delivered.names))]
    header = 1 if number == 0 else 0
    starts = _plain_line_starts(chunk)
    if starts is None:
        frame = _parse_chunk(delivered, chunk, bool(header), positional).with_row_index(ROW, offset=first_row)
        frame = frame.filter(pl.col(ROW).is_in(pl.Series(rows, dtype=pl.UInt32).implode())).drop(ROW)
    else:
        lines = [chunk[starts[i]:starts[i + 1]] for i in (r - first_row + header for r in rows)]
        frame = _parse_chunk(delivered, b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines),
                             False, positional)
    frame = _conform(frame.rename(dict(zip(positional, delivered.names))), TABLES[delivered.table], 1)
    return frame.with_columns(pl.Series(ROW, rows, dtype=pl.Int64))


def _other_encoding(delivered: Delivered, batch_bytes: int) -> None:
    """A file that is not valid UTF-8: with ``auto``, UTF-8 with stray bytes of another
    encoding if it has any UTF-8 character (decided per row: staging quarantines the rows
    with a replaced byte; never re-decoded whole), else CP1252. The batches before the
    first bad byte were valid UTF-8 without a multi-byte character, i.e. ASCII, which CP1252
    reads the same: only a switch to the mixed reading needs them read again."""
    path = delivered.path
    if not delivered.guess_encoding:
        raise DeliveryError(f"{path.name}: not valid UTF-8 text; set ingest.encoding or export as UTF-8")
    # Batches end at a line end, so no UTF-8 character spans two of them.
    if any(_UTF8_MULTIBYTE.search(chunk) for _, chunk in _line_chunks(path, batch_bytes)):
        delivered.encoding, delivered.replaced = MIXED_ENCODING, True
    else:
        delivered.encoding = "cp1252"
    delivered.guess_encoding = False


def _line_chunks(path: Path, batch_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(byte offset, bytes) of a file in pieces of about ``batch_bytes``, each ending at a
    line end outside quotes (or at the end of the file). Quoting is judged as polars does
    when it splits a file into lines: by the parity of the quote characters before a line
    end, so every piece parses to exactly the rows it holds in the whole file."""
    with path.open("rb") as handle:
        pending, offset, scanned, inside = b"", 0, 0, False
        while block := handle.read(max(batch_bytes, len(pending), 1)):   # a long line: doubling reads
            pending += block
            cut, inside = _last_line_end(pending, scanned, inside, len(pending))
            # The first piece holds the header and the first data row at least: polars takes
            # the number of fields from the first row it reads (``_parse_chunk``).
            if cut < 0 or (offset == 0 and _last_line_end(pending, 0, False, cut - 1)[0] < 0):
                scanned = len(pending)
                continue
            yield offset, pending[:cut]
            offset, pending, scanned, inside = offset + cut, pending[cut:], 0, False
        if pending:
            yield offset, pending


def _last_line_end(data: bytes, start: int, quoted: bool, stop: int) -> tuple[int, bool]:
    """The position after the last newline of ``data[start:stop]`` outside quotes (-1 if
    none), given whether ``data[start]`` is inside quotes; and whether ``data[:stop]`` ends
    inside them. Usually the last newline comes after the last quote, at an even count of
    quotes: one look."""
    inside = quoted ^ (data.count(b'"', start, stop) % 2 == 1)
    end, state = stop, inside
    while end > start:
        quote = data.rfind(b'"', start, end)
        if not state:
            newline = data.rfind(b"\n", quote + 1 if quote >= 0 else start, end)
            if newline >= 0:
                return newline + 1, inside
        if quote < 0:
            break
        end, state = quote, not state
    return -1, inside


class _NotUtf8(Exception):
    pass


def _plain_line_starts(chunk: bytes) -> np.ndarray | None:
    """Where each line of a piece starts (and its end), if every line is one row: no quote
    and no blank line (polars skips those); else None."""
    if chunk.find(b'"') >= 0:
        return None
    ends = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10)
    starts = np.concatenate(([0], ends + 1))
    lengths = np.diff(np.concatenate((starts, [len(chunk)])))[:-1] if len(ends) else np.array([], dtype=np.int64)
    carriage = np.frombuffer(chunk, dtype=np.uint8)[starts[:-1]] == 13 if len(ends) else np.array([], dtype=bool)
    if (lengths == 1).any() or ((lengths == 2) & carriage).any():
        return None
    return np.concatenate((starts, [len(chunk)]))


def _transcoded(delivered: Delivered, chunk: bytes, offset: int) -> bytes:
    """A piece as UTF-8: UTF-8 is handed to polars as it is (polars checks it); other
    encodings are transcoded first."""
    if delivered.encoding == MIXED_ENCODING:
        return chunk.decode("utf-8", errors="replace").encode("utf-8")
    if delivered.encoding not in ("utf-8", "utf-8-sig"):
        return _decode(delivered.path, chunk, delivered.encoding, offset).encode("utf-8")
    return chunk


def _parse_chunk(delivered: Delivered, chunk: bytes, header: bool, positional: list[str]) -> pl.DataFrame:
    """One piece of a CSV file as String columns named ``_c0``..., plus _extra."""
    path, encoding = delivered.path, delivered.encoding
    if not header:
        # polars takes the number of fields from the first row it reads: a piece starts with
        # a row of exactly the known fields, dropped after, so a long row parses as in the
        # whole file (the file's first data row, in the first piece, decides as before).
        chunk = delivered.delimiter.encode("ascii") * len(positional) + b"\n" + chunk
    try:
        frame = pl.read_csv(
            chunk, has_header=False, skip_rows=1 if header else 0, separator=delivered.delimiter,
            quote_char='"', infer_schema=False, schema={**{c: pl.String for c in positional}, EXTRA: pl.String},
            missing_columns="insert", truncate_ragged_lines=True, raise_if_empty=False,
        )
        return frame if header else frame.slice(1)
    except pl.exceptions.ComputeError as exc:
        if "utf-8" in str(exc).lower() and encoding in ("utf-8", "utf-8-sig"):
            raise _NotUtf8() from None
        raise DeliveryError(f"{path.name}: malformed CSV that cannot be split into rows (check quoting)") from None
    except pl.exceptions.PolarsError:
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
        schema = pl.read_parquet_schema(path)
    except (pl.exceptions.PolarsError, OSError):
        raise DeliveryError(f"{path.name}: not a readable Parquet file") from None
    names = [c.strip().lower() for c in schema]
    _check_columns(path, spec, names)
    types = dict(zip(names, schema.values()))
    for column in spec.columns:
        dtype = types.get(column.name)
        allowed = _ALLOWED.get(column.kind, _TEXT_TYPES)
        if dtype is not None and not any(dtype == a or dtype.base_type() == a for a in allowed):
            raise DeliveryError(
                f"{path.name}: column {column.name} has Parquet type {dtype}, which cannot hold "
                f"{_KIND_WORDS.get(column.kind, 'text')}"
            )
    return Delivered(
        table=spec.name,
        path=path,
        format="parquet",
        decimal=".",
        ignored_columns=tuple(c for c in names if c not in spec.column_names),
        names=tuple(names),
    )


def _parquet_batches(delivered: Delivered, batch_bytes: int) -> Iterator[tuple[int, pl.DataFrame]]:
    """Slices of rows, as many per batch as the file holds in ``batch_bytes`` of Parquet."""
    path = delivered.path
    try:
        total = pl.scan_parquet(path).select(pl.len()).collect().item()
    except (pl.exceptions.PolarsError, OSError):
        raise DeliveryError(f"{path.name}: not a readable Parquet file") from None
    size = max(1, total * batch_bytes // max(path.stat().st_size, 1))
    for number, start in enumerate(range(0, max(total, 1), size)):   # an empty file: one empty batch
        delivered.pieces[number] = (start, size)
        yield number, _parquet_slice(delivered, start, size)


def _parquet_slice(delivered: Delivered, start: int, size: int) -> pl.DataFrame:
    spec, path = TABLES[delivered.table], delivered.path
    try:
        scan = pl.scan_parquet(path)
        scan = scan.rename(dict(zip(scan.collect_schema().names(), delivered.names)))
        casts = [
            pl.col(name).dt.strftime("%Y-%m-%d %H:%M:%S%.f") if dtype.base_type() == pl.Datetime
            else pl.col(name).cast(pl.String)
            for name, dtype in scan.collect_schema().items() if name in spec.column_names
        ]
        return _conform(scan.slice(start, size).with_columns(casts).collect(), spec, start + 1)
    except (pl.exceptions.PolarsError, OSError):
        raise DeliveryError(f"{path.name}: not a readable Parquet file") from None


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


def _conform(frame: pl.DataFrame, spec: TableSpec, first_row: int) -> pl.DataFrame:
    """Contract columns in contract order (absent optional ones as nulls), _row (from
    ``first_row``), _extra."""
    columns = [
        pl.col(c) if c in frame.columns else pl.lit(None, dtype=pl.String).alias(c)
        for c in spec.column_names
    ]
    extra = pl.col(EXTRA) if EXTRA in frame.columns else pl.lit(None, dtype=pl.String).alias(EXTRA)
    return frame.select(*columns, extra).with_row_index(ROW, offset=first_row).with_columns(
        pl.col(ROW).cast(pl.Int64)
    )
