"""Clinical rules: one versioned, cited module per rule, data in ``reference/rules/*.yaml``.

Each rule module exposes ``evaluate(features) -> polars.DataFrame`` (vectorised; one row per
patient) and ``RULE`` (its parsed YAML). ``versions()`` lists what a run used, for the run
manifest and every worklist. Results are DECISION SUPPORT for clinicians, not diagnoses.
"""

from __future__ import annotations

from fh_screen import reference

RULE_FILES = (
    "dlcn_v1",
    "simon_broome_v1",
    "medped_v2",
    "paediatric_v1",
    "lab_flag_v1",
    "secondary_v2",
    "relatives_cutoffs_v1",
    "ldl_estimation_v2",
    "exclusions_v2",
)


def versions() -> dict[str, dict[str, str]]:
    """Rule name -> {version, source, file} for every rule the rules step applies."""
    out = {}
    for file in RULE_FILES:
        data = reference.load(file)
        out[data["name"]] = {"version": str(data["version"]), "source": " ".join(data["source"].split()),
                             "file": f"reference/rules/{file}.yaml"}
    return out

