"""No function in the package or the DAGs is longer than 50 lines.

A long function mixes decisions that each deserve a name and a spec test (the cascade
letter plan once held six policies in 141 lines). Lines are counted from ``def`` to the
last line of the body, docstring included. Every function is within the limit today, so
``ALLOWED`` is empty. A function that must stay longer for a while is listed there with its
length as a ceiling (it may shrink, never grow) and why it is still long; when it is split,
its entry is deleted (the test fails on a stale entry).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 50
SEARCHED = ("pipelines/fh_screen", "dags")

ALLOWED: dict[str, tuple[int, str]] = {}


def lengths_in(path: Path, name: str) -> dict[str, int]:
    """``name::function`` -> lines, for every function (nested ones too) in one file."""
    out: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            key = f"{name}::{node.name}"
            out[key] = max(out.get(key, 0), node.end_lineno - node.lineno + 1)
    return out


def function_lengths() -> dict[str, int]:
    """``path::name`` -> lines, for every function in the searched folders."""
    out = {}
    for folder in SEARCHED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            out.update(lengths_in(path, path.relative_to(ROOT).as_posix()))
    return out


def test_no_function_is_longer_than_the_limit():
    lengths = function_lengths()
    too_long = {k: n for k, n in lengths.items() if n > LIMIT and n > ALLOWED.get(k, (LIMIT, ""))[0]}
    assert not too_long, f"split these into named policies (limit {LIMIT} lines, or the allowed ceiling): {too_long}"


def test_the_allow_list_has_no_stale_entries():
    lengths = function_lengths()
    stale = {k: lengths.get(k) for k in ALLOWED if lengths.get(k, 0) <= LIMIT}
    assert not stale, f"no longer over {LIMIT} lines (or gone): delete from ALLOWED: {stale}"


def test_the_counter_counts_def_to_last_line(tmp_path):
    """51 lines (def, docstring, 49 statements) at the limit plus one; a nested function counts too."""
    body = '    """Why."""\n' + "    x = 1\n" * 49
    inner = "    def g():\n" + "        y = 2\n" * 50
    (tmp_path / "m.py").write_text("def f():\n" + body + "\n\ndef h():\n" + inner, encoding="utf-8")
    assert lengths_in(tmp_path / "m.py", "m") == {"m::f": LIMIT + 1, "m::h": LIMIT + 2, "m::g": LIMIT + 1}
