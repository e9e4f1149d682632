"""Published yardsticks beside the pilot's own figures, normalised the same way.

The yardsticks and their sources are data (``reference/yardsticks.yaml``); this module
computes each pilot figure from the evaluator document (already rounded and suppressed),
so nothing withheld reaches the page: a figure whose inputs are withheld is withheld.

Normalisations (each also stated on the page):
    flagged_per_1000_tested: flagged / tested x 1,000.
    referred_on_by_gp: listed patients the clinic reported on (any outcome: seen, did not
        attend, declined, pending) / listed; a clinic outcome means the GP referred on.
    genetic_among_attended: genetic FH / seen in clinic.
    new_relatives_per_index: relatives found to have FH / confirmed index cases.
    cost_per_new_case: the report's cost per new case (DKK); published GBP figures are
        shown in DKK at the stated rate.
    new_cases_per_year: new cases (confirmed + relatives found) x 12 / months of the pilot
        (from the first referral month to the run date), against the national aim scaled
        by the region's population / Denmark's.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import yaml

from fh_screen.reference import REFERENCE_DIR
from fh_screen.outputs import metrics_schema as S

YARDSTICKS = REFERENCE_DIR / "yardsticks.yaml"


@lru_cache(maxsize=1)
def reference() -> dict:
    return yaml.safe_load(YARDSTICKS.read_text(encoding="utf-8"))


def _ok(value) -> dict:
    return {"value": value, "status": "ok"}


def _ratio(num: dict, den: dict, scale: float = 1.0, digits: int = 3) -> dict:
    if "suppressed" in (num["status"], den["status"]):
        return {"value": None, "status": "suppressed"}
    if not den["value"]:
        return {"value": None, "status": "not_applicable"}
    return _ok(round(num["value"] / den["value"] * scale, digits))


def pilot_months(document: dict) -> int:
    """Months of the pilot: from the first referral month to the run date's month, inclusive."""
    months = sorted({r["level"] for r in document["counts"] if r["dimension"] == "month" and r["level"] != S.NOT_REFERRED_MONTH})
    if not months:
        return 0
    first = date.fromisoformat(months[0] + "-01")
    as_of = date.fromisoformat(document["as_of"])
    return (as_of.year - first.year) * 12 + as_of.month - first.month + 1


def pilot_figures(document: dict) -> dict[str, dict]:
    """The pilot's figure for each normalisation, with a status, from the evaluator document."""
    head = document["headline"]
    cell = {r["metric"]: {"value": r["value"], "status": r["status"]}
            for r in document["counts"] + document["derived"] if r["dimension"] == S.ALL}
    get = lambda m: cell.get(m, head.get(m, _ok(0)))  # noqa: E731
    referred, none = get("referred"), get("outcome_none")
    reported = ({"value": None, "status": "suppressed"} if "suppressed" in (referred["status"], none["status"])
                else _ok(referred["value"] - none["value"]))
    months = pilot_months(document)
    new_cases = get("new_cases")
    per_year = (new_cases if new_cases["status"] != "ok" else
                _ok(round(new_cases["value"] * 12 / months, 1)) if months else {"value": None, "status": "not_applicable"})
    return {
        "flagged_per_1000_tested": _ratio(get("flagged"), get("tested"), 1000, 1),
        "referred_on_by_gp": _ratio(reported, referred),
        "genetic_among_attended": _ratio(get("outcome_fh_genetic"), get("attended")),
        "new_relatives_per_index": _ratio(get("cascade_positive"), get("confirmed"), 1, 2),
        "cost_per_new_case": get("cost_per_new_case_dkk"),
        "new_cases_per_year": per_year,
    }


def rows(document: dict) -> list[dict]:
    """One row per yardstick: label, published figure (in the pilot's unit), pilot figure, source."""
    ref = reference()
    pilot = pilot_figures(document)
    rate, denmark = ref["gbp_to_dkk"]["value"], ref["denmark_population"]["value"]
    population = document["headline"]["population"]
    out = []
    for y in ref["yardsticks"]:
        published = y.get("published")
        if "published_gbp" in y:
            published = round(y["published_gbp"] * rate)
        if "published_national" in y:
            published = (round(y["published_national"] * population["value"] / denmark, 1)
                         if population["status"] == "ok" else None)
        out.append({"id": y["id"], "label": y["label"], "unit": y["unit"], "published": published,
                    "pilot": pilot[y["pilot"]], "note": y["note"], "source": y["source"]})
    return out


def conventions() -> dict[str, str]:
    """The stated conversions, for the page's footnote."""
    ref = reference()
    return {"gbp_to_dkk": f"{ref['gbp_to_dkk']['value']} DKK per GBP ({ref['gbp_to_dkk']['source']})",
            "denmark_population": f"{ref['denmark_population']['value']:,} ({ref['denmark_population']['source']})"}
