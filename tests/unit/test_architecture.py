"""The package's import rules hold: the import-linter contracts in ``pyproject.toml`` (layers
in data-flow order, one edge per heavy library, no cycles), and every import inside a
function is one of the deliberate, reviewed lazy imports below."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pipelines" / "fh_screen"
LINT = Path(sys.executable).with_name("lint-imports")

# (module, imported module) -> why it is imported inside a function.
LAZY_IMPORTS = {
    # The command line answers --help and fails on a bad argument without importing the
    # pipeline (polars, scikit-learn, Great Expectations: seconds); each command imports
    # only what it runs.
    ("fh_screen.app.cli", "fh_screen.config"): "command line: load only for the command run",
    ("fh_screen.app.cli", "fh_screen.app.run"): "command line: the job runner imports every stage",
    ("fh_screen.app.cli", "fh_screen.synth"): "command line: the generator (numpy, polars)",
    ("fh_screen.app.cli", "fh_screen.convert"): "command line: the register converter (polars)",
    ("fh_screen.app.cli", "fh_screen.synth.simulate"): "command line: the pilot simulator (numpy, polars)",
    ("fh_screen.app.cli", "fh_screen.app.demo"): "command line: the demo imports the runner",
    ("fh_screen.app.cli", "fh_screen.app.review"): "command line: the review page imports the rules and features",
    ("fh_screen.app.cli", "fh_screen.stages.metrics"): "command line: metrics merge only",
    ("fh_screen.app.cli", "fh_screen.stages.metrics.step"): "command line: metrics merge only",
    ("fh_screen.app.cli", "fh_screen.training.train"): "command line: scikit-learn only to train",
    ("fh_screen.app.cli", "fh_screen.app.evaluate"): "command line: evaluation imports training",
    ("fh_screen.app.cli", "fh_screen.store"): "command line: erase only",
    ("fh_screen.app.cli", "fh_screen.app.privacy"): "command line: erase only",
    ("fh_screen.app.cli", "fh_screen.app.publishing"): "command line: erase only (the store's lock)",
    # The Airflow DAG files import orchestration when the scheduler parses them; the
    # catch-up and retraining DAGs must not pay for importing every stage.
    ("fh_screen.app.orchestration", "fh_screen.app.run"): "DAG parsing: the runner imports every stage",
    ("fh_screen.app.orchestration", "fh_screen.app.publishing"): "DAG parsing: only tasks take the locks",
    ("fh_screen.app.orchestration", "fh_screen.context"): "DAG parsing: only tasks open a run's context (DuckDB)",
    ("fh_screen.app.orchestration", "fh_screen.convert"): "DAG parsing: the register converter (polars)",
    ("fh_screen.app.orchestration", "fh_screen.stages.score.artefact"): "DAG parsing: scikit-learn, skops",
    ("fh_screen.app.orchestration", "fh_screen.training.retrain"): "DAG parsing: scikit-learn",
    # Airflow is imported only where it runs: the package works without it (CLI, tests).
    ("fh_screen.app.orchestration", "airflow.sdk"): "Airflow only inside Airflow",
    ("fh_screen.app.orchestration", "fh_screen.app.alerts"): "Airflow only inside Airflow",
    ("fh_screen.app.alerts", "airflow.sdk"): "Airflow only inside Airflow",
    ("fh_screen.app.alerts", "airflow.providers.smtp.hooks.smtp"): "Airflow only inside Airflow",
    # Heavy libraries needed by one output or one phase only.
    ("fh_screen.convert.read", "pyreadstat"): "SAS7BDAT reader: only when a .sas7bdat file is delivered",
    ("fh_screen.outputs.fhir", "fhir.resources.R4B.bundle"): "FHIR models: seconds to import, only with clinics",
    ("fh_screen.outputs.metrics_report", "matplotlib"): "plots: imported only when a report is drawn",
    ("fh_screen.outputs.metrics_report", "matplotlib.pyplot"): "plots: imported only when a report is drawn",
    ("fh_screen.outputs.metrics_report", "matplotlib.ticker"): "plots: imported only when a report is drawn",
    ("fh_screen.stages.score.artefact", "skops.io"): "skops indexes all loaded modules (2 s): only with a model file",
    ("fh_screen.stages.validate.step", "fh_screen.stages.validate.gx_runner"): "Great Expectations: about 4 s",
    ("fh_screen.stages.validate.gx_runner", "great_expectations"): "Great Expectations: about 4 s",
    ("fh_screen.stages.validate.gx_runner", "great_expectations.data_context.types.base"): "Great Expectations",
    ("fh_screen.stages.validate.gx_duckdb", "great_expectations.execution_engine"): "Great Expectations",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _function_imports() -> set[tuple[str, str]]:
    found = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom):
                    found.add((_module_name(path), node.module))
                elif isinstance(node, ast.Import):
                    found |= {(_module_name(path), alias.name) for alias in node.names}
    return found


def test_import_contracts_hold():
    result = subprocess.run([str(LINT), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
                            cwd=ROOT / "pipelines", capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 kept, 0 broken" in result.stdout


def test_imports_inside_functions_are_the_reviewed_lazy_ones():
    assert _function_imports() == set(LAZY_IMPORTS)


# A connection is recognised by its use: SQL run or frames registered on it.
CONNECTION_CALLS = {"connect", "execute", "sql", "register", "unregister", "fetchall", "fetchone", "cursor"}


def test_outputs_never_take_a_connection():
    """Outputs render frames and view models; the steps read the store (an output given a
    connection could read what no step declared, and could not be tested without a store)."""
    found = []
    for path in sorted((PACKAGE / "outputs").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = [a.arg for a in (*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs)]
                found += [f"{path.name}:{node.lineno} {node.name}({a})" for a in args if a in ("con", "conn", "connection")]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in CONNECTION_CALLS):
                found.append(f"{path.name}:{node.lineno} .{node.func.attr}()")
    assert not found, "\n".join(found)
