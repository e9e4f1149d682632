"""Great Expectations for one run: one ephemeral context, the reviewed suites, checkpoints
against the DuckDB file, and Data Docs.

Why SQL on DuckDB and not pandas data frames: measured with
``benchmarks/bench_validation.py`` (figures in ``expectations/README.md``), the SQL path is
several times faster and needs no copy of the table in memory. It needs the connection
patch in ``gx_duckdb``.

GX opens the DuckDB file through its own connection, and DuckDB refuses a second
connection to the same file with a different configuration in one process. So the caller
closes its own connection before ``run`` and ``run`` releases GX's connection before it
returns.
"""

from __future__ import annotations

from datetime import datetime

import json
import logging
import os
from pathlib import Path
from typing import Any

from fh_screen.stages.validate import gx_duckdb

# The repository's expectations/ folder, shipped with the package (bundled/ links it).
SUITE_DIR = Path(__file__).resolve().parents[2] / "bundled" / "expectations"
DATASOURCE = "fh_duckdb"
DOCS_SITE = "fh_quality"
# BASIC gives counts plus the SQL that selects the failing rows (by _row), without lists
# of values: Data Docs must not show patient ids or values.
RESULT_FORMAT = {
    "result_format": "BASIC",
    "unexpected_index_column_names": ["_row"],
    "return_unexpected_index_query": True,
    "partial_unexpected_count": 0,
}


def load_suite(table: str) -> dict:
    """The reviewed suite ``expectations/<table>.json`` as a plain dict."""
    return json.loads((SUITE_DIR / f"{table}.json").read_text(encoding="utf-8"))


def docs_site_config(docs_dir: Path) -> dict:
    """GX's default Data Docs site under ``docs_dir``, its pages drawn by GX's page views
    sharing one Jinja environment (``gx_docs``: templates compiled once per process)."""
    views = f"{__package__}.gx_docs"
    page = {"view": {"module_name": views, "class_name": "PageView"}}
    return {
        "class_name": "SiteBuilder",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(Path(docs_dir).resolve()),
        },
        "site_section_builders": {"expectations": page, "validations": page, "profiling": page},
        "site_index_builder": {
            "class_name": "DefaultSiteIndexBuilder",
            "view": {"module_name": views, "class_name": "IndexPageView"},
        },
    }


class SuiteRunner:
    """Validate ``gx_<table>`` relations of one DuckDB file and keep Data Docs under ``docs_dir``."""

    def __init__(self, db_path: Path, docs_dir: Path, memory_limit: str | None = None,
                 temp_dir: Path | None = None) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        gx_duckdb.apply_patch()
        # GX pins one module logger to INFO, which would print to the user's stderr.
        for name in ("great_expectations", "great_expectations.data_context.types.base"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        self.context.add_data_docs_site(site_name=DOCS_SITE, site_config=docs_site_config(docs_dir))
        self.source = self.context.data_sources.add_sql(
            DATASOURCE, connection_string=gx_duckdb.connection_string(db_path, memory_limit, temp_dir)
        )
        self.release()  # add_sql tested the connection

    def run(self, tables: list[str], run_name: str, run_time: datetime) -> dict[str, Any]:
        """One checkpoint over ``gx_<table>`` for each table; returns validation results by table."""
        gx = self._gx
        definitions = []
        for table in tables:
            asset = self.source.add_table_asset(f"gx_{table}", table_name=f"gx_{table}")
            batch = asset.add_batch_definition_whole_table("whole")
            suite = self.context.suites.add(gx.ExpectationSuite(**load_suite(table)))
            definitions.append(
                self.context.validation_definitions.add(
                    gx.ValidationDefinition(name=table, data=batch, suite=suite)
                )
            )
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(
                name=f"fh_{'_'.join(tables)}",
                validation_definitions=definitions,
                result_format=RESULT_FORMAT,
            )
        )
        try:
            # An explicit run time (the run date, so Data Docs paths are the same on a rerun):
            # without one GX derives it from the run name.
            run_id = gx.RunIdentifier(run_name=run_name, run_time=run_time)
            result = checkpoint.run(run_id=run_id)
        finally:
            self.release()
        by_suite = {r.suite_name: r for r in result.run_results.values()}
        return {table: by_suite[table] for table in tables}

    def build_docs(self) -> None:
        """Render Data Docs once for all validations of the run (an UpdateDataDocsAction
        per validation would rebuild the whole site each time)."""
        self.context.build_data_docs(site_names=[DOCS_SITE])

    def release(self) -> None:
        """Close GX's DuckDB connection so the pipeline can open the file again."""
        engine = self.source._execution_engine
        if engine is not None:
            if getattr(engine, "_connection", None) is not None:
                engine._connection.close()
                engine._connection = None
            engine._inspector = None
            engine.engine.dispose()
            self.source._execution_engine = None
        if self.source._engine is not None:
            self.source._engine.dispose()
            self.source._engine = None
