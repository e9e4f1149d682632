"""A clinician's review page for one patient: every input the rules used, with dates, units
and provenance; each criterion's result and why; the route and the reasons.

The reason, check, lab and score lines are built by the worklist's own view model
(``worklists.patient_view``) from the same ``rule_results`` row, so the page says exactly
what the worklist says; the inputs section adds the values behind them. Decision support
for clinicians, not a diagnosis.
"""

from __future__ import annotations

from fh_screen.config import Settings
from fh_screen.outputs import worklists
from fh_screen.stages.referrals.details import read_details
from fh_screen.stages.rules.explain import render

# patient_features / rule_results columns shown as the inputs the rules used, with their unit.
INPUTS = (
    ("LDL-C used for scoring", "ldl_untreated_estimate_mmol", "mmol/L"),
    ("  basis", "ldl_estimate_basis", ""),
    ("  sample date", "ldl_estimate_date", ""),
    ("  age at sample", "ldl_estimate_age", "years"),
    ("  measured value of that sample", "ldl_estimate_measured_mmol", "mmol/L"),
    ("  method / equation", "ldl_estimate_source", ""),
    ("  regimen at sample", "ldl_estimate_regimen", ""),
    ("  correction factor", "ldl_correction_factor", ""),
    ("  factor provenance", "ldl_correction_source", ""),
    ("Highest LDL-C (any sample)", "ldl_max_mmol", "mmol/L"),
    ("  date", "ldl_max_date", ""),
    ("  on treatment", "ldl_max_treated", ""),
    ("Highest untreated LDL-C", "ldl_max_untreated_mmol", "mmol/L"),
    ("LDL-C percentile for age and sex (approximate)", "ldl_percentile", ""),
    ("Highest untreated total cholesterol", "tc_max_untreated_mmol", "mmol/L"),
    ("  MEDPED in mg/dL", "medped_tc_mg_dl", "mg/dL"),
    ("Highest LDL-C sampled at 18-39", "ldl_max_age_18_39_mmol", "mmol/L"),
    ("Highest LDL-C sampled from 40", "ldl_max_age_ge40_mmol", "mmol/L"),
    ("Highest untreated LDL-C before 18", "child_ldl_max_mmol", "mmol/L"),
    ("First coronary heart disease at age", "chd_first_age", "years"),
    ("First other vascular disease at age", "other_cvd_first_age", "years"),
    ("First-degree relatives / second-degree", "n_fdr", ""),
    ("  second-degree", "n_sdr", ""),
    ("TSH near the scoring sample", "sec_tsh_max_miu_l", "mIU/L"),
    ("HbA1c near the scoring sample", "sec_hba1c_max_mmol_mol", "mmol/mol"),
    ("Triglycerides near the scoring sample", "sec_tg_max_mmol", "mmol/L"),
    ("Lipid-clinic outcome (latest)", "clinic_last_outcome", ""),
    ("  date", "clinic_last_outcome_date", ""),
)
RESULTS = (
    ("DLCN", "dlcn_points", "dlcn_category"), ("  family history points", "dlcn_family_points", None),
    ("  clinical history points", "dlcn_clinical_points", None), ("  physical examination points", "dlcn_exam_points", None),
    ("  LDL-C points", "dlcn_ldl_points", None), ("  DNA points", "dlcn_dna_points", None),
    ("Simon Broome", "simon_broome", None), ("MEDPED", "medped", "medped_column"),
    ("EAS 2015 paediatric criteria", "paediatric", None), ("Lab flag", "lab_flag", "lab_flag_threshold_exceeded"),
    ("Secondary cause that explains the LDL-C", "secondary_probable", None),
    ("Triggers (rules)", "selected_by_rules", None), ("Clinical criterion met", "clinical_criterion", None),
    ("Excluded", "excluded_reason", None), ("Route", "route", None),
)


def _value(v, unit: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        v = round(v, 3)
    return f"{v} {unit}".strip()


def _clinic(con, patient_id: str, as_of) -> str | None:
    """The clinic the patient's latest referral named (the worklist's action names it too)."""
    if not con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'referral_events'").fetchone()[0]:
        return None
    found = con.execute("SELECT clinic_id FROM referral_events WHERE patient_id = ? AND as_of <= ? "
                        "AND clinic_id IS NOT NULL ORDER BY as_of DESC LIMIT 1", [patient_id, as_of]).fetchone()
    return found[0] if found else None


def patient_page(con, patient_id: str, settings: Settings, lang: str = "en") -> str:
    """The review page text for ``patient_id``; raises ``KeyError`` when the store has no such patient."""
    cur = con.execute("SELECT * FROM rule_results WHERE patient_id = ?", [patient_id])
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    if row is None:
        raise KeyError("patient not in rule_results")
    rule = dict(zip(names, row))
    cur = con.execute("SELECT * FROM patient_features WHERE patient_id = ?", [patient_id])
    features = dict(zip([d[0] for d in cur.description], cur.fetchone()))
    score = con.execute("SELECT probability FROM model_scores WHERE patient_id = ?", [patient_id]).fetchone() \
        if con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'model_scores'").fetchone()[0] \
        else None
    as_of = rule["as_of"]
    row = {**features, **rule, "rank": None, "event": "listed", "clinic_id": _clinic(con, patient_id, as_of),
           "probability": score[0] if score and (rule.get("age_years") or 0) >= settings.selection.adult_age else None}
    detail = read_details(con, [patient_id], as_of)[patient_id]
    view = worklists.patient_view(row, detail, lang, render,
                                  {c.clinic_id: c.name for c in settings.clinics})
    lines = [f"Clinician's review page: patient {patient_id}, run date {as_of}",
             "Decision support for clinicians, not a diagnosis.", "", "INPUTS THE RULES USED"]
    lines += [f"  {label}: {_value(row.get(col), unit)}" for label, col, unit in INPUTS]
    lines += ["", "LABORATORY RESULTS (as on the worklist)"]
    lines += [f"  {lab['test']}: {lab['value']} ({lab['date']})" for lab in view["labs"]]
    if view["trend_label"]:
        lines.append(f"  {view['trend_label']}")
    lines += ["", "CRITERIA"]
    for label, col, extra in RESULTS:
        shown = _value(row.get(col))
        lines.append(f"  {label}: {shown}" + (f" ({_value(row.get(extra))})" if extra else ""))
    lines += ["", "ON THE WORKLIST", f"  DLCN: {view['dlcn']}", f"  Simon Broome: {view['simon_broome']}",
              f"  MEDPED: {view['medped']}", f"  Probability: {view['probability']}",
              f"  Route: {view['route_label']}", "  Reasons:"]
    lines += [f"    - {r['text']}" for r in view["reasons"]]
    lines.append("  Ask and check:")
    lines += [f"    - {c['text']}" for c in view["checks"]]
    if view["secondary_cause"]:
        lines.append(f"  Possible secondary cause: {view['secondary_cause']}")
    lines.append(f"  Action: {view['action']}")
    lines.append(f"  Rule versions: {rule.get('rule_versions')}")
    return "\n".join(lines) + "\n"
