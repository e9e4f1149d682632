"""GP worklists: one per practice in HTML, PDF and CSV, plus FHIR bundles per clinic.

The plan from ``fh_screen.stages.referrals.step`` says who is listed; this module gathers what a GP
needs to decide in under a minute (key labs with dates and an LDL trend, treatment,
scores, reasons, what to ask and check, the recommended action) into one view model per
practice, which the HTML template (``templates/worklists/worklist.html.j2``), the PDF
writer (``fh_screen.outputs.worklist_pdf``) and the CSV all render, so they never disagree.

Safety: patient-supplied text reaches HTML only through Jinja autoescaping; the PDF
writer prints text as text (no markup); CSV cells that a spreadsheet would run as a
formula are prefixed with an apostrophe; file names come from ``files.safe_name``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import polars as pl
import yaml
from markupsafe import Markup, escape

import fh_screen
from fh_screen import reference
from fh_screen.store import files
from fh_screen.outputs import render
from fh_screen.context import RunContext
from fh_screen.reference import bands as score_bands

STRINGS = render.TEMPLATES / "worklists" / "strings.yaml"
TEMPLATE = "worklists/worklist.html.j2"
# "Current" lipid-lowering treatment = dispensed within the last year; Danish packs last
# up to ~100-200 days, so a year catches people still on treatment with gaps in refills.
TREATMENT_LOOKBACK_DAYS = 365
# Danish GP referral criterion LDL-C > 5.0 mmol/L at age >= 40 (Hedegaard 2023; shared
# clinical brief §11): drawn as the reference line on the trend plot.
TREND_REFERENCE_MMOL = 5.0
# Missing-item codes -> a question or examination prompt, by the first keyword found in
# the code (the rules engine owns the codes; unknown codes are explained by it instead).
PROMPT_KEYWORDS = (
    ("_self", "own_history"), ("own_", "own_history"),
    ("first_degree", "family_history"), ("family", "family_history"), ("relative", "family_history"),
    ("xanth", "examination"), ("arcus", "examination"), ("exam", "examination"), ("physical", "examination"),
    ("dna", "dna"), ("genetic", "dna"), ("variant", "dna"),
)
# Corneal arcus counts for DLCN only before this age (reference/rules/dlcn_v1.yaml, decision
# arcus_before_age): younger patients are examined for it, older ones asked whether it was seen.
ARCUS_BEFORE_AGE = reference.load("dlcn_v1")["arcus_before_age"]
# Decimals in CSV exports (full precision stays in the store): LDL-C 2, factors 3, probability 2.
CSV_DECIMALS = {"ldl": 2, "factor": 3, "probability": 2}
# A probability rounded to 2 decimals must not read as 0 or 1 (certainty): exports are kept
# within this range; the worklists print "< 1 %" and "> 99 %" for the same values.
EXPORT_PROBABILITY_RANGE = (0.01, 0.99)
# Secondary-cause reason codes that explain the LDL-C (secondary_v2 grade "explains"): the
# worklist's secondary-cause line; the *_info codes are among the reasons.
EXPLAINING_SECONDARY = ("sec_tsh", "sec_hba1c", "sec_tg", "sec_nephrotic", "sec_cholestasis", "sec_drug")
CSV_COLUMNS = [
    "rank", "event", "patient_id", "name", "age_years", "sex", "route", "clinic_id",
    "dlcn_points", "dlcn_category", "probability", "ldl_max_mmol", "ldl_max_date",
    "ldl_untreated_estimate_mmol", "reasons", "what_to_check", "secondary_cause", "action", "clinic_place",
]


@lru_cache(maxsize=1)
def drug_names() -> dict[str, str]:
    """ATC code -> the name a GP reads, from ``reference/lipid_drugs.csv`` (the one list of
    lipid-lowering drugs, docs/clinical-reference.md §10.4); a fixed-dose combination names
    both agents."""
    table = reference.csv("lipid_drugs").select("atc_code", "drug", "class")
    return {code: f"{drug} + ezetimibe" if kind == "statin_ezetimibe" else drug
            for code, drug, kind in table.iter_rows()}


@lru_cache(maxsize=1)
def strings() -> dict[str, dict[str, str]]:
    return yaml.safe_load(STRINGS.read_text(encoding="utf-8"))


# --- formatting ------------------------------------------------------------------------


def num(value, lang: str, digits: int = 1) -> str:
    """A number the way a reader of ``lang`` writes it (Danish decimal comma)."""
    if value is None:
        return "–"
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if lang == "da" else text


def percent(probability: float, lang: str) -> str:
    """A probability as a whole percentage that never reads 0 % or 100 %: a model
    probability is never certainty, and below 1 % or above 99 % it says so."""
    if probability < 0.01:
        return f"< {num(1, lang, 0)} %"
    if probability > 0.99:
        return f"> {num(99, lang, 0)} %"
    return f"{num(probability * 100, lang, 0)} %"


def share_text(rate: float, words: dict) -> str:
    """An observed share in words: "about 4 in 10", "about 3 in 100", "fewer than 1 in 100"."""
    if rate >= 0.095:
        return words["band_share"].format(n=round(rate * 10), of=10)
    if round(rate * 100) >= 1:
        return words["band_share"].format(n=round(rate * 100), of=100)
    return words["band_share_below"]


def probability_text(probability: float, lang: str, band_rates: dict[str, float]) -> str:
    """The exact value with its band and the band's observed meaning on held-out worlds
    (``reference/rules/probability_bands_v1.yaml``; rates from the model artefact), e.g.
    "27 % (high: about 3 in 10 people like this had FH in validation)"."""
    words = strings()[lang]
    band = score_bands.band_of(probability)
    rate = band_rates.get(band)
    meaning = f": {words['band_meaning'].format(share=share_text(rate, words))}" if rate is not None else ""
    return f"{percent(probability, lang)} ({words['band_' + band]}{meaning})"


def trend_svg(points: list[tuple[date, float]], label: str) -> Markup:
    """A small inline SVG line of LDL values over time, with a 5.0 mmol/L reference line.

    Hand-written (no plotting library) because it is drawn for thousands of patients a
    night; only numbers and the escaped ``label`` go into the markup.
    """
    if not points:
        return Markup("")
    width, height, pad = 220, 60, 6
    xs, ys = trend_coordinates(points, width, height, pad)
    ref_y = trend_y(TREND_REFERENCE_MMOL, points, height, pad)
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2"/>' for x, y in zip(xs, ys))
    return Markup(
        f'<svg class="trend" role="img" aria-label="{escape(label)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(label)}</title>'
        f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#ffffff" stroke="#6b6b6b"/>'
        f'<line x1="{pad}" y1="{ref_y:.1f}" x2="{width - pad}" y2="{ref_y:.1f}" stroke="#8a1c1c" '
        f'stroke-dasharray="4 3" stroke-width="1"/>'
        f'<polyline points="{line}" fill="none" stroke="#0b3d91" stroke-width="1.8"/>'
        f'<g fill="#0b3d91">{dots}</g></svg>'
    )


def _bounds(points) -> tuple[float, float]:
    values = [v for _, v in points]
    low = min(min(values), TREND_REFERENCE_MMOL) - 0.5
    high = max(max(values), TREND_REFERENCE_MMOL) + 0.5
    return max(low, 0.0), high


def trend_y(value: float, points, height: float, pad: float) -> float:
    low, high = _bounds(points)
    return height - pad - (value - low) / (high - low) * (height - 2 * pad)


def trend_coordinates(points, width: float, height: float, pad: float) -> tuple[list[float], list[float]]:
    """x by sample date (time-proportional), y by value; shared by the SVG and the PDF."""
    days = [d.toordinal() for d, _ in points]
    span = max(days[-1] - days[0], 1)
    if len(points) == 1:
        xs = [width / 2]
    else:
        xs = [pad + (d - days[0]) / span * (width - 2 * pad) for d in days]
    ys = [trend_y(v, points, height, pad) for _, v in points]
    return xs, ys


# --- gathering details -----------------------------------------------------------------


def rounded(value, kind: str):
    """A number for a CSV export, rounded to ``CSV_DECIMALS[kind]`` (None stays None)."""
    if value is None:
        return None
    number = round(float(value), CSV_DECIMALS[kind])
    return min(max(number, EXPORT_PROBABILITY_RANGE[0]), EXPORT_PROBABILITY_RANGE[1]) if kind == "probability" else number


def details_from(patient_ids: list[str], labs: pl.DataFrame, drugs: pl.DataFrame, names: pl.DataFrame,
                 ldl_series: dict[str, list[tuple[date, float]]] | None = None) -> dict[str, dict]:
    """Per listed patient: labs (per analyte, (day, value, censored) in sample order), current
    lipid-lowering drugs, name and the LDL-C trend, from frames the referrals step reads
    (``stages.referrals.details``): outputs render what they are given and never read the store.

    ``ldl_series`` gives each patient's LDL-C per sample day as the features see it, so the
    trend's "highest" equals the table's."""
    details: dict[str, dict] = {pid: {"labs": {}, "drugs": [], "name": None, "ldl_series": []}
                                for pid in patient_ids}
    series = labs.group_by(["patient_id", "analyte"], maintain_order=True).agg("day", "value", "censored")
    for row in series.iter_rows(named=True):
        details[row["patient_id"]]["labs"][row["analyte"]] = list(zip(row["day"], row["value"], row["censored"]))
    for row in drugs.iter_rows(named=True):
        details[row["patient_id"]]["drugs"].append(row)
    for row in names.iter_rows(named=True):
        details[row["patient_id"]]["name"] = row["full_name"]
    for pid, points in (ldl_series or {}).items():
        details[pid]["ldl_series"] = points
    return details


# --- view model ------------------------------------------------------------------------


@dataclass
class PracticeList:
    """Everything one practice's worklist shows, in the worklist language."""

    practice_id: str
    heading: str
    lang: str
    as_of: date
    patients: list[dict]
    counts: dict[str, int]
    coming: list[str]        # queued patients of the practice, as "expected in week W: n" lines
    footer: dict[str, str]
    strings: dict[str, str] = field(repr=False, default_factory=dict)


def _texts(items: list[str], lang: str) -> list[dict]:
    """List items as sentences (first letter capitalised), tagged with their language."""
    return [{"text": t[:1].upper() + t[1:], "lang": lang} for t in items if t]


def reason_lines(row: dict, lang: str, explain) -> list[dict]:
    """The rules' reasons in the worklist language, else their English text."""
    if explain is not None and row.get("reason_items"):
        try:
            return _texts(explain(json.loads(row["reason_items"]), lang), lang)
        except (KeyError, ValueError, TypeError):
            pass  # an item the renderer does not know: the English text below still says it
    return _texts((row.get("reasons") or "").split("; "), "en")


def secondary_line(row: dict, lang: str, explain) -> str | None:
    """The causes that explain the LDL-C, in the worklist language (never English on a Danish list)."""
    if explain is None or not row.get("reason_items"):
        return row.get("secondary_cause")
    items = [i for i in json.loads(row["reason_items"]) if i.get("code") in EXPLAINING_SECONDARY]
    return "; ".join(explain(items, lang)) or None


def check_lines(row: dict, lang: str, explain) -> list[dict]:
    """What to ask and examine, from the rules' missing items (see PROMPT_KEYWORDS). Corneal
    arcus counts only before ``ARCUS_BEFORE_AGE``: from that age on the prompt asks whether it
    was seen before it instead of examining for it."""
    words = strings()[lang]
    prompts, other = [], []
    older = (row.get("age_years") or 0) >= ARCUS_BEFORE_AGE
    for code in row.get("missing_items") or []:
        key = next((k for word, k in PROMPT_KEYWORDS if word in code.lower()), None)
        if key == "examination" and older:
            key = "examination_older"
        if key is None:
            other.append(code)
        elif (prompt := words[f"prompt_{key}"].format(arcus_age=ARCUS_BEFORE_AGE)) not in prompts:
            prompts.append(prompt)
    lines = _texts(prompts, lang)
    if other:
        rendered = None
        if explain is not None:
            try:
                rendered = _texts(explain([{"code": c, "params": {}} for c in other], lang), lang)
            except (KeyError, ValueError, TypeError):
                rendered = None
        lines += rendered if rendered is not None else _texts((row.get("missing_information") or "").split("; "), "en")
    return lines


def _lab_rows(row: dict, labs: dict, lang: str) -> list[dict]:
    words = strings()[lang]
    rows = []
    if row.get("ldl_max_mmol") is not None:
        note = f" ({words['on_treatment']})" if row.get("ldl_max_treated") else ""
        rows.append({"test": words["ldl_max"], "value": f"{num(row['ldl_max_mmol'], lang, 2)} mmol/L{note}",
                     "date": _iso(row.get("ldl_max_date"))})
    if row.get("ldl_untreated_estimate_mmol") is not None:
        basis = row.get("ldl_estimate_basis") or "measured_untreated"
        factor = num(row.get("ldl_correction_factor"), lang, 3) if row.get("ldl_correction_factor") else ""
        how = words[f"basis_{basis}"].format(regimen=row.get("ldl_estimate_regimen") or "", factor=factor)
        rows.append({"test": words["ldl_untreated"],
                     "value": f"{num(row['ldl_untreated_estimate_mmol'], lang, 2)} mmol/L ({how})",
                     "date": _iso(row.get("ldl_estimate_date") or row.get("ldl_max_date"))})
    for analyte, key in (("ldl", "ldl_latest"), ("tc", "tc"), ("hdl", "hdl"), ("tg", "tg")):
        if labs.get(analyte):
            day, value, censored = labs[analyte][-1]
            rows.append({"test": words[key], "value": f"{censored or ''}{num(value, lang)} mmol/L", "date": _iso(day)})
    return rows


def _iso(value) -> str:
    return value.isoformat()[:10] if value is not None else "–"


def _drug_lines(drugs: list[dict]) -> list[str]:
    lines = []
    for d in drugs:
        name = drug_names().get(d["atc_code"], d["atc_code"])
        strength = f" {d['strength_mg']:g} mg" if d["strength_mg"] is not None else ""
        lines.append(f"{name}{strength} ({_iso(d['last_on'])})")
    return lines


def _action(row: dict, words: dict, clinic_names: dict, finding: str | None = None) -> str:
    if row["route"] == "check_secondary_cause_first":
        return words["action_check"].format(finding=finding) if finding else words["action_check_generic"]
    clinic = clinic_names.get(row.get("clinic_id"))
    if clinic is None:
        return words["action_refer_no_clinic"]
    return words["action_refer_child" if row.get("catchment") == "paediatric" else "action_refer"].format(clinic=clinic)


def week_label(day, lang: str) -> str:
    """The ISO week of ``day`` the way a reader of ``lang`` names it ("uge 3, 2027")."""
    year, week, _ = day.isocalendar()
    return strings()[lang]["week"].format(week=week, year=year)


def slot_line(row: dict, words: dict, lang: str) -> str:
    """When the patient's lipid-clinic place is expected: a week, or not yet scheduled.

    Check-first patients have no place until the secondary cause is ruled out; a listed
    clinic referral has this week's place (``fh_screen.stages.referrals.backlog``).
    """
    if row.get("route") == "check_secondary_cause_first":
        return words["slot_after_check"]
    if row.get("slot_week") is None:
        return words["slot_not_scheduled"]
    return words["slot_week"].format(week=week_label(row["slot_week"], lang))


def coming_lines(queued: pl.DataFrame, lang: str) -> list[str]:
    """Queued patients of one practice by expected week of their clinic place.

    Only queued patients within the horizon are counted, each against a named week (or
    "not yet scheduled"); patients below the line are not queued and never counted.
    """
    words = strings()[lang]
    out = []
    by_week = queued.group_by("slot_week").len().sort("slot_week", nulls_last=True)
    for day, n in by_week.iter_rows():
        when = week_label(day, lang) if day is not None else words["coming_not_scheduled"]
        out.append(words["coming_line"].format(when=when, n=n))
    return out


def patient_view(row: dict, detail: dict, lang: str, explain, clinic_names: dict,
                 band_rates: dict[str, float] | None = None) -> dict:
    """One worklist entry: identity, labs, trend, treatment, scores, reasons, action."""
    words = strings()[lang]
    ldl = detail.get("ldl_series") or [(d, v) for d, v, _ in detail["labs"].get("ldl", [])]
    trend_label = (
        words["trend_label"].format(n=len(ldl), first=_iso(ldl[0][0]), last=_iso(ldl[-1][0]),
                                    max=num(max(v for _, v in ldl), lang, 2))
        if ldl else ""
    )
    probability = row.get("probability")
    category = row.get("dlcn_category")
    points = row.get("dlcn_points")
    dlcn = f"{points} {words['point' if points == 1 else 'points']}" if points is not None else "–"
    if category:
        dlcn += f" ({words.get('category_' + category, category)})"
    age = row.get("age_years")
    secondary = secondary_line(row, lang, explain)
    return {
        "rank": row["rank"],
        "event": row["event"],
        "event_label": words[f"event_{row['event']}"],
        "patient_id": row["patient_id"],
        "name": detail.get("name"),
        "age": words["age"].format(age=int(age)) if age is not None else "–",
        "sex": words.get(f"sex_{row.get('sex') or 'U'}", words["sex_U"]),
        "labs": _lab_rows(row, detail["labs"], lang),
        "trend": ldl,
        "trend_label": trend_label,
        "trend_svg": trend_svg(ldl, trend_label),
        "treatment": _drug_lines(detail["drugs"]),
        "dlcn": dlcn,
        "simon_broome": words.get(f"sb_{row.get('simon_broome')}", row.get("simon_broome") or "–"),
        "medped": words.get(f"medped_{row.get('medped')}", row.get("medped") or "–"),
        "probability": probability_text(probability, lang, band_rates or {}) if probability is not None
        else words["not_scored_child" if row.get("is_child") else "not_calculated"],
        "reasons": reason_lines(row, lang, explain),
        "checks": check_lines(row, lang, explain),
        "secondary_cause": secondary,
        "route": row["route"],
        "route_label": words[f"route_{row['route']}"],
        "action": _action(row, words, clinic_names, secondary),
        "slot": slot_line(row, words, lang),
        "reminder_note": words["reminder_note"].format(date=_iso(row.get("last_listed_on")))
        if row["event"] == "reminder" else None,
    }


def footer(ctx_manifest: dict, model_versions: list[str], as_of: date, lang: str) -> dict[str, str]:
    """How the list was made: code, rule and model versions; the decision-support notice."""
    words = strings()[lang]
    rules = ctx_manifest.get("rules")
    if isinstance(rules, dict):
        parts = [f"{k} {v.get('version', '') if isinstance(v, dict) else v}".strip() for k, v in sorted(rules.items())]
    elif isinstance(rules, list):
        parts = [f"{r.get('name', '')} {r.get('version', '')}".strip() if isinstance(r, dict) else str(r) for r in rules]
    else:
        parts = []
    return {
        "how": words["footer_how"].format(version=fh_screen.__version__, date=as_of.isoformat()),
        "rules": f"{words['footer_rules']}: {', '.join(parts) if parts else words['footer_unknown']}",
        "model": f"{words['footer_model']}: {', '.join(model_versions) if model_versions else words['footer_no_model']}",
        "disclaimer": words["disclaimer"],
    }


def practice_lists(planned: pl.DataFrame, details: dict, ctx: RunContext, explain=None) -> list[PracticeList]:
    """The view model of every practice with somebody listed tonight (queued patients of the
    practice appear only as counts against the expected week of their clinic place).

    ``explain`` renders the rules' reason items (``[{code, params}]``) in the list's
    language; without it the English texts stored with the results are shown.
    """
    lang = ctx.settings.worklist_language
    words = strings()[lang]
    clinic_names = {c.clinic_id: c.name for c in ctx.settings.clinics}
    models = sorted(v for v in planned["model_version"].unique().to_list() if v) if "model_version" in planned.columns else []
    foot = footer(ctx.manifest, models, ctx.as_of, lang)
    band_rates = {b["name"]: b["observed_rate"] for b in ctx.manifest.get("model", {}).get("bands", [])
                  if b.get("observed_rate") is not None}
    unassigned = ctx.settings.selection.unassigned_practice_id
    queued = planned.filter(pl.col("event") == "queued")
    if "slot_week" not in queued.columns:
        queued = queued.with_columns(pl.lit(None, pl.Date).alias("slot_week"))
    listed = planned.filter(pl.col("event") != "queued").sort(["practice_id", "rank"])
    out = []
    for (practice_id,), group in listed.group_by(["practice_id"], maintain_order=True):
        rows = group.to_dicts()
        patients = [patient_view(r, details[r["patient_id"]], lang, explain, clinic_names, band_rates)
                    for r in rows]
        counts = {
            "total": len(rows),
            "new": sum(r["event"] == "listed" for r in rows),
            "reminder": sum(r["event"] == "reminder" for r in rows),
            "check": sum(r["route"] == "check_secondary_cause_first" for r in rows),
            "children": sum(bool(r.get("is_child")) for r in rows),
        }
        heading = words["unassigned"] if practice_id == unassigned else f"{words['practice']} {practice_id}"
        coming = coming_lines(queued.filter(pl.col("practice_id") == practice_id), lang)
        out.append(PracticeList(practice_id, heading, lang, ctx.as_of, patients, counts, coming, foot, words))
    return out


# --- writing ---------------------------------------------------------------------------


def file_stems(practice_ids: list[str]) -> dict[str, str]:
    """Safe, distinct file-name stems; ids that clean to the same name get a hash suffix.

    Names are compared without case: on a case-insensitive share (Windows, macOS) the
    lists of practices ``ABC`` and ``abc`` would otherwise overwrite each other."""
    stems, seen = {}, set()
    for pid in sorted(practice_ids):
        stem = files.safe_name(pid, "practice")
        if stem.casefold() in seen:
            stem = f"{stem}-{hashlib.sha256(pid.encode()).hexdigest()[:8]}"
        seen.add(stem.casefold())
        stems[pid] = stem
    return stems


def html(practice: PracticeList) -> str:
    return render.render_html(TEMPLATE, p=practice, w=practice.strings)


def csv_text(practice: PracticeList, rows: list[dict]) -> str:
    """The practice's list as CSV (same order and wording as the HTML)."""
    by_id = {r["patient_id"]: r for r in rows}

    def cells(view: dict) -> tuple:
        row = by_id[view["patient_id"]]
        return (
            view["rank"], view["event"], view["patient_id"], view["name"], row.get("age_years"), row.get("sex"),
            view["route"], row.get("clinic_id"), row.get("dlcn_points"), row.get("dlcn_category"),
            rounded(row.get("probability"), "probability"), rounded(row.get("ldl_max_mmol"), "ldl"),
            _iso(row.get("ldl_max_date")), rounded(row.get("ldl_untreated_estimate_mmol"), "ldl"),
            " | ".join(x["text"] for x in view["reasons"]),
            " | ".join(x["text"] for x in view["checks"]), view["secondary_cause"], view["action"], view["slot"],
        )

    return files.csv_text(CSV_COLUMNS, (cells(view) for view in practice.patients))
