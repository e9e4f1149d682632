"""Settings: one typed, frozen object for environment and policy.

Clinical thresholds do NOT live here; they stay with their rules (``reference/rules/*.yaml``).
This file holds what a region decides: its clinics and their capacity, the selection
policy, letter policy, costs for the evaluators. The resolved settings are written next
to every run's outputs so a run can be explained later.

Load order: the packaged defaults (``reference/settings.yaml``), then a region file given
with ``--config`` or ``FH_SCREEN_CONFIG``, merged key by key.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

DEFAULTS = Path(__file__).with_name("reference") / "settings.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegionSettings(_Frozen):
    region_id: str = "demo"
    name: str = "Synthetic demo region"


class IngestSettings(_Frozen):
    """How delivered files are read. ``auto`` sniffs each CSV file."""

    delimiter: Literal["auto", ",", ";", "\t", "|"] = "auto"
    decimal: Literal["auto", ".", ","] = "auto"
    encoding: Literal["auto", "utf-8", "cp1252", "latin-1"] = "auto"
    extra_codes: dict[str, str] = Field(
        default_factory=dict,
        description="Local analyte code -> a code already in reference/analyte_codes.csv",
    )
    layout: Literal["contract", "dst", "sds", "medcom-lab"] = Field(
        default="contract",
        description="What arrives in the delivery folder: the contract's tables, or register extracts "
        "in a layout of docs/registers.md, converted before the night runs",
    )


class ValidationSettings(_Frozen):
    drift_min_volume_ratio: float = 0.5   # warn when a table has < 50% of the previous delivery's rows
    max_future_days: int = 0              # dates after the run date are rejected
    earliest_birth_date: date = date(1900, 1, 1)  # older birth dates are placeholders or typos
    unit_switch_min_share: float = 0.10   # warn when >= 10% of an analyte code's results come in a unit
    unit_switch_max_previous_share: float = 0.01  # ... that was < 1% of that code's results before


class Clinic(_Frozen):
    clinic_id: str
    name: str
    weekly_capacity: int
    practices: list[str] = Field(default_factory=list)   # practices it serves
    postcodes: list[str] = Field(default_factory=list)   # postcode prefixes it serves
    paediatric: bool = False


class SelectionSettings(_Frozen):
    """Who is put on a worklist. Any of the three triggers selects."""

    dlcn_min_points: int = 6              # DLCN > 5 = probable/definite (NICE CG71; docs/clinical-reference.md §1)
    min_probability: float = 0.20
    use_lab_flag: bool = True
    suppression_months: int = 12          # not listed again within this window after a referral
    reminder_months: int = 6              # no clinic outcome after this long -> listed again as a reminder
    max_reminders: int = 1                # reminders per referral cycle; then quiet until the suppression window ends
    fallback_clinic_id: str | None = None # clinic for patients no catchment matches; None = first adult clinic listed
    adult_age: int = 18
    unassigned_practice_id: str = "UNASSIGNED"


class BacklogSettings(_Frozen):
    """When and how many of the selected are queued for a clinic (docs/selection-and-waiting.md).

    Each night takes the prospective flow first (what is new since the last run); the
    historic population (the backlog) may hold at most ``share`` of the clinics' places in
    the next ``horizon_weeks``, and never the places the prospective flow is expected to
    need. Everyone below that line stays eligible and is not queued.
    """

    horizon_weeks: int = Field(12, ge=1, le=52)      # how far ahead a clinic place may be promised
    share: float = Field(1.0, gt=0.0, le=1.0)        # of the horizon's places; 1.0 = all the prospective flow leaves
    lookback_years: int = Field(20, ge=1, le=100)    # older evidence does not enter the backlog pass


class CascadeSettings(_Frozen):
    include_existing_diagnosis_as_index: bool = False
    direct_contact: bool = False          # region allows writing to relatives directly
    reminder_weeks: int = 8
    default_language: Literal["da", "en"] = "da"


class MetricsSettings(_Frozen):
    expected_prevalence: float = 1 / 250
    # Disclosure control (OpenSAFELY's default): counts 1..small_cell_max are withheld, other
    # counts are published rounded to the nearest rounding_base (1 = exact counts, withheld
    # complements instead). See docs/metrics.md.
    small_cell_max: int = 7
    rounding_base: int = 5
    unit_costs_dkk: dict[str, float] = Field(
        default_factory=lambda: {
            "lab_test": 60.0,
            "gp_review": 400.0,
            "clinic_visit": 2500.0,
            "genetic_test": 4000.0,
            "letter": 25.0,
        }
    )


class ModelSettings(_Frozen):
    artefact: str = "models/fh_baseline"  # production scorer (models/fh_gbm/MODEL_CARD.md); absolute, relative
    # to the working folder, or shipped with the package
    enabled: bool = True


class IncrementalSettings(_Frozen):
    """Nightly runs recompute only the patients whose inputs changed or whose date-dependent
    results crossed a boundary (``fh_screen.store.changes``); a full pass recomputes everyone."""

    enabled: bool = True
    full_pass_days: int = Field(default=7, ge=1)  # a full pass when the last one is this many days old
    # A full pass builds features in partitions of about this many people, whole families
    # together, so its memory is set by this number rather than by the region's size.
    partition_people: int = Field(default=250_000, ge=1)


class StoreSettings(_Frozen):
    """How much of the machine the store's DuckDB may take (``store.db`` applies it to every
    connection). Beyond ``memory_limit`` DuckDB spills to a temporary folder inside the run's
    private work folder (owner-only, removed with it), never next to the database file."""

    memory_limit: str = Field(
        default="1GiB", pattern=r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="DuckDB memory_limit, e.g. 1GiB or 512MiB; the rest of a run (polars, Python) comes on top",
    )


class Settings(_Frozen):
    region: RegionSettings = RegionSettings()
    ingest: IngestSettings = IngestSettings()
    validation: ValidationSettings = ValidationSettings()
    clinics: list[Clinic] = Field(default_factory=list)
    paediatric_clinic_id: str | None = None
    selection: SelectionSettings = SelectionSettings()
    backlog: BacklogSettings = BacklogSettings()
    cascade: CascadeSettings = CascadeSettings()
    metrics: MetricsSettings = MetricsSettings()
    model: ModelSettings = ModelSettings()
    incremental: IncrementalSettings = IncrementalSettings()
    store: StoreSettings = StoreSettings()
    worklist_language: Literal["da", "en"] = "da"


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_settings(path: str | os.PathLike | None = None) -> Settings:
    """Packaged defaults, overlaid with a region file (argument or ``FH_SCREEN_CONFIG``)."""
    data = yaml.safe_load(DEFAULTS.read_text(encoding="utf-8")) or {}
    path = path or os.environ.get("FH_SCREEN_CONFIG")
    if path:
        data = _merge(data, yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})
    return Settings.model_validate(data)
