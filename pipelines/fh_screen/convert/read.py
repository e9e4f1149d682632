"""Reading register files (SAS7BDAT, CSV, Parquet) into text columns under canonical names.

Every value is read as text and converted later by ``fields``: a register's types vary
by year and by the tool that exported it (a SAS date is a number, the same date in CSV
is ``27JUN1995``), and reading text first means nothing is coerced silently.

SAS7BDAT is read with pyreadstat (the ReadStat C library, maintained by Roche, wheels for
Python 3.11): it is the reader most Python users of Danish register data use, reads
SAS7BDAT without SAS, and returns polars frames. It cannot write SAS7BDAT, so the tests
read a small file made with ReadStat's own command-line tool (tests/fixtures/registers/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from fh_screen.convert.layout import Layout, SourceTable
from fh_screen.errors import DeliveryError

FORMATS = ("sas7bdat", "csv", "parquet")
_PERIOD = r"(?:_?(\d{4})(\d{2})?)?"


@dataclass(frozen=True)
class SourceFile:
    table: str          # the layout's name for the table (``bef``, ``lab`` ...)
    path: Path
    period: str         # the period in the file name (``202409``), '' when none

    @property
    def snapshot(self) -> date | None:
        """The reference date of a snapshot named by its period: the end of that month
        (the end of December for a bare year)."""
        if not self.period:
            return None
        year, month = int(self.period[:4]), int(self.period[4:6] or 12)
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        return date.fromordinal(nxt.toordinal() - 1)


def find_sources(in_dir: Path, layout: Layout) -> dict[str, list[SourceFile]]:
    """The files of each source table in ``in_dir``; a missing required table is an error."""
    if not in_dir.is_dir():
        raise DeliveryError(f"{in_dir.name}: register folder not found")
    found: dict[str, list[SourceFile]] = {}
    files = sorted(p for p in in_dir.iterdir() if p.is_file() and not p.name.startswith("."))
    for name, spec in layout.tables.items():
        for path in files:
            stem, _, suffix = path.name.lower().rpartition(".")
            if suffix not in FORMATS:
                continue
            for base in spec.files:
                match = re.fullmatch(re.escape(base) + _PERIOD, stem)
                if match:
                    found.setdefault(name, []).append(SourceFile(name, path, "".join(g or "" for g in match.groups())))
                    break
    for name, spec in layout.tables.items():
        if spec.required and name not in found:
            options = "|".join(f"{f.upper()}" for f in spec.files)
            raise DeliveryError(f"{options}: required register table missing from {in_dir.name} "
                                f"(layout {layout.layout}; .sas7bdat, .csv or .parquet)")
    return found


def sources_present(in_dir: Path, layout: Layout) -> bool:
    """True when ``in_dir`` holds every required table of ``layout`` (what a sensor asks)."""
    try:
        find_sources(in_dir, layout)
    except DeliveryError:
        return False
    return True


def read_source(source: SourceFile, spec: SourceTable) -> pl.DataFrame:
    """One source file as text columns named canonically, plus ``_file`` and ``_row``.

    Column names are matched case-insensitively against the layout's names; the first
    listed name that is present wins. Columns the layout does not list are dropped.
    A column the layout needs and the file lacks is a one-line error naming both.
    """
    frame = read_raw(source.path)
    by_lower = {c.lower(): c for c in frame.columns}
    picked = {}
    for canonical, names in spec.columns.items():
        hit = next((by_lower[n.lower()] for n in names if n.lower() in by_lower), None)
        if hit is not None:
            picked[canonical] = hit
    return frame.select(
        *(pl.col(src).alias(canonical) for canonical, src in picked.items()),
        pl.lit(source.path.name).alias("_file"),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row"),
    )


def require(frame: pl.DataFrame, source_files: list[SourceFile], spec: SourceTable, *columns: str) -> None:
    """Refuse a table that lacks a column the conversion needs: one line, file and column."""
    for column in columns:
        if column not in frame.columns:
            names = "/".join(spec.columns[column])
            files = ", ".join(sorted({s.path.name for s in source_files}))
            raise DeliveryError(f"{files}: column {names} missing")


def read_table(sources: list[SourceFile], spec: SourceTable, *needed: str) -> pl.DataFrame:
    """All files of one source table stacked (a table may be split by period), with
    ``_period`` from the file names; ``needed`` columns must be present in every file."""
    frames = []
    for source in sources:
        frame = read_source(source, spec)
        require(frame, [source], spec, *needed)
        snap = source.snapshot
        frames.append(frame.with_columns(pl.lit(snap, dtype=pl.Date).alias("_snapshot")))
    return pl.concat(frames, how="diagonal") if frames else pl.DataFrame()


def read_raw(path: Path) -> pl.DataFrame:
    """A whole file as text columns under its own column names."""
    suffix = path.name.lower().rpartition(".")[2]
    try:
        if suffix == "csv":
            return _read_csv(path)
        if suffix == "parquet":
            return _as_text(pl.read_parquet(path))
        import pyreadstat

        frame, _meta = pyreadstat.read_sas7bdat(str(path), output_format="polars")
        return _as_text(frame)
    except DeliveryError:
        raise
    except Exception as exc:  # any reader failure is one line naming the file, no values
        raise DeliveryError(f"{path.name}: unreadable {suffix} file ({type(exc).__name__})") from None


def _read_csv(path: Path) -> pl.DataFrame:
    """CSV as text: ';' or ',' separated (whichever the header uses), UTF-8 or CP1252."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252")
    header = text.split("\n", 1)[0]
    separator = ";" if header.count(";") > header.count(",") else ","
    return pl.read_csv(text.encode("utf-8"), separator=separator, infer_schema=False)


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Typed columns as text: dates ISO, whole floats without ``.0`` (SAS stores every
    number as a float: KOEN 1.0 is the code 1), other numbers as polars prints them."""
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Date:
            out.append(col.dt.strftime("%Y-%m-%d").alias(name))
        elif dtype.is_temporal():
            out.append(col.cast(pl.Datetime("us")).dt.strftime("%Y-%m-%dT%H:%M:%S").alias(name))
        elif dtype.is_float():
            whole = col.is_finite() & (col == col.round(0)) & (col.abs() < 1e15)
            out.append(pl.when(whole).then(col.cast(pl.Int64, strict=False).cast(pl.String))
                       .otherwise(col.cast(pl.String)).alias(name))
        else:
            out.append(col.cast(pl.String).alias(name))
    return frame.select(out)
