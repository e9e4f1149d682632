"""Generator parameters: the cited defaults in ``params.yaml`` plus an optional override file.

Every leaf in ``params.yaml`` is ``{value, source}`` so each number carries its citation. An
override file (``--params``) replaces leaves by plain values or ``{value: ...}``; unknown keys
are refused, because a misspelt key would otherwise leave the default silently in place
(a held-out region built with the wrong prevalence is worse than an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fh_screen.errors import UserError

DEFAULTS = Path(__file__).with_name("params.yaml")


def _is_leaf(node: Any) -> bool:
    return isinstance(node, dict) and "value" in node


def _values(node: Any) -> Any:
    if _is_leaf(node):
        return node["value"]
    if isinstance(node, dict):
        return {key: _values(child) for key, child in node.items()}
    return node


def _merge(base: dict, override: dict, where: str) -> dict:
    merged = dict(base)
    for key, new in override.items():
        if key not in base:
            raise UserError(f"unknown synth parameter '{where}{key}' in the --params file")
        old = base[key]
        if _is_leaf(old):
            merged[key] = {**old, "value": new["value"] if _is_leaf(new) else new, "source": "override file"}
        elif isinstance(old, dict) and isinstance(new, dict):
            merged[key] = _merge(old, new, f"{where}{key}.")
        else:
            merged[key] = new
    return merged


def load_params(params_file: Path | None = None, defaults: Path = DEFAULTS) -> tuple[dict, dict]:
    """Return ``(values, cited)``: plain values for the generator and the cited tree.

    Args:
        params_file: optional YAML whose keys override the packaged defaults.
        defaults: the cited defaults (the generator's ``params.yaml``, or the pilot
            simulator's ``behaviour.yaml``).
    """
    cited = yaml.safe_load(defaults.read_text(encoding="utf-8"))
    if params_file is not None:
        try:
            override = yaml.safe_load(Path(params_file).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"cannot read synth parameter file {params_file}: {exc.__class__.__name__}") from exc
        if not isinstance(override, dict):
            raise UserError(f"synth parameter file {params_file} is not a mapping")
        cited = _merge(cited, override, "")
    return _values(cited), cited


def band_table(table: dict[str, Any]) -> tuple[list[float], list[Any]]:
    """Sort a ``{"age": value}`` mapping into parallel lists for ``np.interp``."""
    keys = sorted(table, key=float)
    return [float(k) for k in keys], [table[k] for k in keys]
