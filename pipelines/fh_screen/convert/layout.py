"""A register layout: which source tables a delivery holds and what their columns are called.

The mapping is data (``layouts/<name>.yaml``); this module only loads and checks it, so
a new register year with renamed columns is a YAML edit, not a code change.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from fh_screen.errors import UserError

LAYOUT_DIR = Path(__file__).with_name("layouts")
LAYOUTS = ("dst", "sds", "medcom-lab")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceTable(_Frozen):
    files: list[str]                              # file name stems, lower case; a period may follow
    required: bool = False
    snapshot_from_name: bool = False              # BEF: the period in the file name is the snapshot
    columns: dict[str, list[str]]                 # canonical name -> names it is delivered under


class Layout(_Frozen):
    layout: str
    title: str
    people: Literal["bef", "cpr3", "contract"]
    deaths: Literal["dod", "status", "contract"]
    migrations: Literal["vnds", "status", "contract"]
    medications: Literal["lmdb", "lms", "contract"]
    sex_codes: dict[str, list[str]] = Field(default_factory=dict)
    status_codes: dict[str, list[str]] = Field(default_factory=dict)
    tables: dict[str, SourceTable]


@lru_cache(maxsize=None)
def load_layout(name: str) -> Layout:
    """The named layout; an unknown name is a one-line error listing the known ones."""
    if name not in LAYOUTS:
        raise UserError(f"unknown layout {name!r}: use one of {', '.join(LAYOUTS)}")
    path = LAYOUT_DIR / f"{name.replace('-', '_')}.yaml"
    return Layout.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
