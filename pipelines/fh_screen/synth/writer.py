"""Writing a delivery's tables as CSV (plain or Danish dialect) or Parquet, byte-reproducibly.

Danish dialect: ';' delimiter, decimal comma in the numeric columns (lab ``value``,
``strength_mg``), CP1252 encoding, as Danish exports often are (contract §1). Dates stay
ISO ``YYYY-MM-DD``; ``sampled_at`` is ISO ``YYYY-MM-DDTHH:MM:SS``. No timestamps of the
run are written anywhere, so the same arguments give identical bytes.
"""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from fh_screen.store.files import write_bytes

DECIMAL_COLUMNS = {"lab_results": ["value"], "medications": ["strength_mg"]}


def write_table(df: pl.DataFrame, folder: Path, name: str, fmt: str, dialect: str) -> Path:
    if fmt == "parquet":
        buf = io.BytesIO()
        df.write_parquet(buf, compression="zstd", statistics=True)
        return write_bytes(folder / f"{name}.parquet", buf.getvalue())
    separator, encoding = ",", "utf-8"
    if dialect == "danish":
        separator, encoding = ";", "cp1252"
        df = df.with_columns([
            pl.col(c).cast(pl.String).str.replace(".", ",", literal=True) for c in DECIMAL_COLUMNS.get(name, [])
        ])
    text = df.write_csv(separator=separator, date_format="%Y-%m-%d", datetime_format="%Y-%m-%dT%H:%M:%S",
                        null_value="", quote_style="necessary")
    # ASCII text is the same bytes in UTF-8 and CP1252; only tables with names need re-encoding.
    data = text.encode("utf-8") if text.isascii() else text.encode(encoding)
    return write_bytes(folder / f"{name}.csv", data)
