"""Row accounting for a conversion: read = converted + set aside, per source table.

Every converter step hands back the rows it read with a ``_reason`` column (NULL =
converted, else the plain-language reason it was set aside). The ledger counts them and
keeps the set-aside rows' file, row number and reason - never their values, so the
manifest and ``set_aside.csv`` hold no patient data.
"""

from __future__ import annotations

from collections import Counter

import polars as pl

SET_ASIDE_SCHEMA = {"source_table": pl.String, "file": pl.String, "row": pl.Int64, "reason": pl.String}


class Ledger:
    def __init__(self) -> None:
        self.tables: dict[str, dict] = {}
        self._set_aside: list[pl.DataFrame] = []
        self.notes: Counter[str] = Counter()

    def account(self, table: str, rows: pl.DataFrame) -> None:
        """Count ``rows`` (columns ``_file``, ``_row``, ``_reason``) for ``table``."""
        entry = self.tables.setdefault(table, {"files": [], "read": 0, "converted": 0, "set_aside": 0, "reasons": {}})
        if rows.height == 0:
            return
        entry["files"] = sorted(set(entry["files"]) | set(rows["_file"].unique().to_list()))
        entry["read"] += rows.height
        aside = rows.filter(pl.col("_reason").is_not_null())
        entry["converted"] += rows.height - aside.height
        entry["set_aside"] += aside.height
        for reason, n in aside.group_by("_reason").len().iter_rows():
            entry["reasons"][reason] = entry["reasons"].get(reason, 0) + n
        if aside.height:
            self._set_aside.append(aside.select(
                pl.lit(table).alias("source_table"), pl.col("_file").alias("file"),
                pl.col("_row").cast(pl.Int64).alias("row"), pl.col("_reason").alias("reason")))

    def note(self, what: str, n: int) -> None:
        """A count worth telling that is not a set-aside row (e.g. strengths left empty)."""
        if n:
            self.notes[what] += n

    def set_aside_frame(self) -> pl.DataFrame:
        if not self._set_aside:
            return pl.DataFrame(schema=SET_ASIDE_SCHEMA)
        return pl.concat(self._set_aside).sort("source_table", "file", "row")

    def report(self) -> dict:
        for name, entry in self.tables.items():
            if entry["read"] != entry["converted"] + entry["set_aside"]:  # pragma: no cover - a bug, not bad input
                raise AssertionError(f"row accounting broken for {name}")
            entry["reasons"] = dict(sorted(entry["reasons"].items()))
        return {"tables": dict(sorted(self.tables.items())), "notes": dict(sorted(self.notes.items()))}
