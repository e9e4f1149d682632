"""Plain-language reasons and missing information, in Danish and English.

One template per item code serves two renderers, so the text on a worklist is the text in
``rule_results.reasons``:

* :func:`render` turns reason items (``{"code", "params"}``, as stored in
  ``rule_results.reason_items``) or missing-item codes into sentences, for worklists and letters.
* :func:`text_expr` builds the same English sentence as a polars expression, for scoring
  a million patients without a Python loop.

Params are display strings made by the rule modules (``common.fmt_*``); Danish rendering
swaps the decimal point for a comma, writes dates as dd-mm-yyyy and translates a few
categorical values. Wording is for a GP reading in seconds: decision support, not a diagnosis.
"""

from __future__ import annotations

import json
import re
from typing import Iterable

import polars as pl

INFO_EN = "For information, not enough to explain this LDL-C level: "
INFO_DA = "Til orientering, forklarer ikke dette LDL-kolesterol: "
TEMPLATES: dict[str, dict[str, str]] = {
    # LDL-C facts
    "ldl_untreated": {
        "en": "LDL-C used for scoring: {ldl} mmol/L measured untreated on {date} at age {age}",
        "da": "LDL-kolesterol brugt i vurderingen: {ldl} mmol/L målt uden kolesterolsænkende behandling "
              "den {date} som {age}-årig",
    },
    "ldl_treated": {
        "en": "LDL-C used for scoring: estimated untreated {estimate} mmol/L from {ldl} mmol/L on {date} at age "
              "{age} on {regimen} (x{factor}, {provenance}); no untreated value on record",
        "da": "LDL-kolesterol brugt i vurderingen: anslået ubehandlet {estimate} mmol/L ud fra {ldl} mmol/L den "
              "{date} som {age}-årig i behandling med {regimen} (x{factor}, {provenance}); ingen ubehandlet "
              "værdi registreret",
    },
    "ldl_early_treatment": {
        "en": "LDL-C used for scoring: {ldl} mmol/L on {date} at age {age}, {days} days after starting {regimen}: "
              "too early for the drug to act, so not corrected (no untreated value on record)",
        "da": "LDL-kolesterol brugt i vurderingen: {ldl} mmol/L den {date} som {age}-årig, {days} dage efter "
              "start på {regimen}: for tidligt til at midlet virker, derfor ikke omregnet (ingen ubehandlet "
              "værdi registreret)",
    },
    "ldl_highest_measured": {
        "en": "highest measured LDL-C {ldl} mmol/L on {date} at age {age}",
        "da": "højeste målte LDL-kolesterol {ldl} mmol/L den {date} som {age}-årig",
    },
    "ldl_equation": {
        "en": "LDL-C calculated from total cholesterol, HDL and triglycerides ({equation} equation)",
        "da": "LDL-kolesterol beregnet ud fra total-kolesterol, HDL og triglycerid ({equation}-formlen)",
    },
    # DLCN
    "dlcn_score": {
        "en": "Dutch Lipid Clinic Network score {points}: {category} FH",
        "da": "Dutch Lipid Clinic Network-score {points} point: {category} FH",
    },
    "dlcn_out_of_scope": {
        "en": "DLCN not scored: age {age} is under 18 (the score is for adults)",
        "da": "DLCN ikke beregnet: alder {age} år er under 18 (scoren gælder voksne)",
    },
    "dlcn_not_calculable": {
        "en": "DLCN not calculable: no LDL-C result",
        "da": "DLCN kan ikke beregnes: intet LDL-kolesterol-svar",
    },
    # Family items say whose history it is: they describe a relative, never the patient.
    "dlcn_fdr_premature_chd": {
        "en": "Family history: a first-degree relative (parent, sibling or child) has premature coronary heart "
              "disease (+{points})",
        "da": "Familieanamnese: en førstegradsslægtning (forælder, søskende eller barn) har tidlig iskæmisk "
              "hjertesygdom (+{points})",
    },
    "dlcn_fdr_ldl_above_p95": {
        "en": "Family history: a first-degree relative has LDL-C above the 95th percentile for age and sex "
              "(+{points})",
        "da": "Familieanamnese: en førstegradsslægtning har LDL-kolesterol over 95-percentilen for alder og køn "
              "(+{points})",
    },
    "dlcn_fdr_xanthoma_or_arcus": {
        "en": "Family history: a first-degree relative has tendon xanthoma or corneal arcus (+{points})",
        "da": "Familieanamnese: en førstegradsslægtning har senexantomer eller arcus corneae (+{points})",
    },
    "dlcn_child_ldl_above_p95": {
        "en": "Family history: the patient's own child (under 18) has LDL-C above the 95th percentile for age "
              "and sex (+{points})",
        "da": "Familieanamnese: patientens eget barn (under 18 år) har LDL-kolesterol over 95-percentilen for "
              "alder og køn (+{points})",
    },
    "dlcn_premature_chd": {
        "en": "The patient has premature coronary heart disease (+{points})",
        "da": "Patienten har tidlig iskæmisk hjertesygdom (+{points})",
    },
    "dlcn_premature_cerebral_or_peripheral": {
        "en": "The patient has premature cerebral or peripheral vascular disease (+{points})",
        "da": "Patienten har tidlig cerebral eller perifer karsygdom (+{points})",
    },
    "dlcn_tendon_xanthoma": {"en": "The patient has tendon xanthoma (+{points})",
                             "da": "Patienten har senexantomer (+{points})"},
    "dlcn_arcus_before_45": {
        "en": "The patient had corneal arcus before age 45 (+{points})",
        "da": "Patienten havde arcus corneae før 45 års alder (+{points})",
    },
    "dlcn_ldl_band": {
        "en": "{basis} LDL-C {estimate} mmol/L is in the band {lower} to under {upper} mmol/L (+{points})",
        "da": "{basis} LDL-kolesterol {estimate} mmol/L ligger i intervallet {lower} til under {upper} mmol/L "
              "(+{points})",
    },
    "dlcn_ldl_band_top": {
        "en": "{basis} LDL-C {estimate} mmol/L is {lower} mmol/L or above (+{points})",
        "da": "{basis} LDL-kolesterol {estimate} mmol/L er {lower} mmol/L eller derover (+{points})",
    },
    "dlcn_causative_variant": {
        "en": "causative variant in LDLR, APOB or PCSK9: {gene} (+{points})",
        "da": "sygdomsfremkaldende variant i LDLR, APOB eller PCSK9: {gene} (+{points})",
    },
    # Other criteria
    "simon_broome_definite": {"en": "Simon Broome criteria: definite FH", "da": "Simon Broome-kriterier: sikker FH"},
    "simon_broome_possible": {"en": "Simon Broome criteria: possible FH", "da": "Simon Broome-kriterier: mulig FH"},
    "medped_met": {
        "en": "MEDPED: total cholesterol {tc} mmol/L ({tc_mg} mg/dL) at age {age} is above {cutoff} mg/dL ({column})",
        "da": "MEDPED: total-kolesterol {tc} mmol/L ({tc_mg} mg/dL) som {age}-årig er over {cutoff} mg/dL ({column})",
    },
    "paediatric_twice": {
        "en": "Child: LDL-C {ldl} mmol/L on {date} and {second} mmol/L on another occasion, both 5.0 or above "
              "(EAS 2015 paediatric criteria)",
        "da": "Barn: LDL-kolesterol {ldl} mmol/L den {date} og {second} mmol/L ved en anden måling, begge 5,0 "
              "eller derover (EAS 2015-kriterier for børn)",
    },
    "paediatric_family": {
        "en": "Child: LDL-C {ldl} mmol/L on {date} is 4.0 or above, with premature coronary heart disease in a "
              "close relative or high cholesterol in a parent (EAS 2015 paediatric criteria)",
        "da": "Barn: LDL-kolesterol {ldl} mmol/L den {date} er 4,0 eller derover, med tidlig iskæmisk "
              "hjertesygdom hos en nær slægtning eller højt kolesterol hos en forælder (EAS 2015-kriterier for børn)",
    },
    "paediatric_parent_genetic": {
        "en": "Child: LDL-C {ldl} mmol/L on {date} is 3.5 or above, and a parent has a genetic FH diagnosis "
              "(EAS 2015 paediatric criteria)",
        "da": "Barn: LDL-kolesterol {ldl} mmol/L den {date} er 3,5 eller derover, og en forælder har genetisk "
              "påvist FH (EAS 2015-kriterier for børn)",
    },
    "paediatric_not_met": {
        "en": "Child: EAS 2015 paediatric criteria not met (highest LDL-C {ldl} mmol/L on {date})",
        "da": "Barn: EAS 2015-kriterierne for børn er ikke opfyldt (højeste LDL-kolesterol {ldl} mmol/L den {date})",
    },
    "lab_flag": {
        "en": "LDL-C {ldl} mmol/L is above the Danish laboratory threshold of {threshold} mmol/L for age {age_band}",
        "da": "LDL-kolesterol {ldl} mmol/L er over laboratoriets grænse på {threshold} mmol/L for alder {age_band}",
    },
    "relative_confirmed_fh": {
        "en": "Family history: a first-degree relative has confirmed FH",
        "da": "Familieanamnese: en førstegradsslægtning har bekræftet FH",
    },
    "relative_cutoff": {
        "en": "as a relative of a person with FH, the patient's LDL-C {ldl} mmol/L makes FH {category} by the "
              "cut-offs for relatives of that age and sex",
        "da": "som slægtning til en person med FH gør patientens LDL-kolesterol {ldl} mmol/L FH {category} efter "
              "grænserne for slægtninge af samme alder og køn",
    },
    # Secondary causes (the finding itself: value and date)
    "sec_tsh": {"en": "TSH {value} mIU/L on {date}", "da": "TSH {value} mIU/L den {date}"},
    "sec_hba1c": {"en": "HbA1c {value} mmol/mol on {date}", "da": "HbA1c {value} mmol/mol den {date}"},
    "sec_tg": {"en": "triglycerides {value} mmol/L on {date}", "da": "triglycerid {value} mmol/L den {date}"},
    "sec_nephrotic": {
        "en": "albumin {albumin} g/L with urine albumin/creatinine {uacr} mg/mmol on {date}",
        "da": "albumin {albumin} g/L med urin-albumin/kreatinin {uacr} mg/mmol den {date}",
    },
    "sec_cholestasis": {
        "en": "ALP {alp} U/L and GGT {ggt} U/L on {date}",
        "da": "basisk fosfatase {alp} U/L og GGT {ggt} U/L den {date}",
    },
    "sec_drug": {"en": "{drug} ({atc}) dispensed on {date}", "da": "{drug} ({atc}) udleveret den {date}"},
    # Weaker findings (secondary_v2 secondary_graded): shown, do not change the route.
    "sec_tsh_info": {"en": INFO_EN + "TSH {value} mIU/L on {date} (below 10)",
                     "da": INFO_DA + "TSH {value} mIU/L den {date} (under 10)"},
    "sec_hba1c_info": {"en": INFO_EN + "HbA1c {value} mmol/mol on {date} (diabetes range, below 75)",
                       "da": INFO_DA + "HbA1c {value} mmol/mol den {date} (diabetesniveau, under 75)"},
    "sec_nephrotic_info": {
        "en": INFO_EN + "albumin {albumin} g/L with urine albumin/creatinine {uacr} mg/mmol on {date} "
              "(below the nephrotic range)",
        "da": INFO_DA + "albumin {albumin} g/L med urin-albumin/kreatinin {uacr} mg/mmol den {date} "
              "(under nefrotisk niveau)"},
    "sec_ckd_info": {"en": INFO_EN + "eGFR {value} mL/min/1.73m2 on {date}",
                     "da": INFO_DA + "eGFR {value} mL/min/1,73m2 den {date}"},
    "sec_drug_info": {"en": INFO_EN + "{drug} ({atc}) dispensed on {date}",
                      "da": INFO_DA + "{drug} ({atc}) udleveret den {date}"},
    "route_check_secondary": {
        "en": "possible secondary cause of high cholesterol: check it before referring",
        "da": "mulig sekundær årsag til højt kolesterol: afklar den før henvisning",
    },
    # Exclusions
    "excluded_deceased": {"en": "deceased", "da": "død"},
    "excluded_moved_out": {"en": "moved out of the region", "da": "fraflyttet regionen"},
    "excluded_diagnosis_code": {
        "en": "already diagnosed: {code} on {date}",
        "da": "allerede diagnosticeret: {code} den {date}",
    },
    "excluded_confirmed_clinic": {
        "en": "already diagnosed with FH by a lipid clinic on {date}",
        "da": "allerede diagnosticeret med FH af en lipidklinik den {date}",
    },
    "excluded_under_clinic_care": {
        "en": "under lipid-clinic care (latest outcome {outcome} on {date})",
        "da": "følges i lipidklinik (seneste svar {outcome} den {date})",
    },
    "excluded_clinic_not_fh": {
        "en": "the lipid clinic found no FH on {date}, and there is no new evidence since",
        "da": "lipidklinikken fandt ikke FH den {date}, og der er ikke kommet nye oplysninger siden",
    },
    # Earlier lipid-clinic outcomes and codes (exclusions_v2 outcome_shown, fh_specific_codes).
    "clinic_last_outcome": {
        "en": "Earlier lipid-clinic outcome: {outcome} on {date}",
        "da": "Tidligere svar fra lipidklinikken: {outcome} den {date}",
    },
    "relisted_not_fh_ldl": {
        "en": "Listed again although the lipid clinic found no FH on {date}: new LDL-C {ldl} mmol/L on {ldl_date} "
              "is higher than any before that outcome (highest {before} mmol/L)",
        "da": "På listen igen, selv om lipidklinikken ikke fandt FH den {date}: nyt LDL-kolesterol {ldl} mmol/L "
              "den {ldl_date} er højere end alle før dette svar (højeste {before} mmol/L)",
    },
    "relisted_not_fh_chd": {
        "en": "Listed again although the lipid clinic found no FH on {date}: coronary heart disease was first "
              "diagnosed on {chd_date}",
        "da": "På listen igen, selv om lipidklinikken ikke fandt FH den {date}: iskæmisk hjertesygdom blev "
              "diagnosticeret første gang den {chd_date}",
    },
    "relisted_not_fh_family": {
        "en": "Listed again although the lipid clinic found no FH on {date}: a family history was recorded on "
              "{fhx_date}",
        "da": "På listen igen, selv om lipidklinikken ikke fandt FH den {date}: en familieanamnese blev "
              "registreret den {fhx_date}",
    },
    "recorded_e780": {
        "en": "Recorded diagnosis {code} (pure hypercholesterolaemia) on {date}: not an FH diagnosis",
        "da": "Registreret diagnose {code} (ren hyperkolesterolæmi) den {date}: ikke en FH-diagnose",
    },
    "gene_not_causative": {
        "en": "Lipid clinic named the gene {gene} without concluding genetic FH (e.g. a variant of uncertain "
              "significance): no DNA points",
        "da": "Lipidklinikken nævnte genet {gene} uden at konkludere genetisk FH (fx en variant af usikker "
              "betydning): ingen DNA-point",
    },
    # Missing information
    "no_ldl": {"en": "no LDL-C result", "da": "intet LDL-kolesterol-svar"},
    "family_history_not_recorded": {"en": "family history not recorded", "da": "familieanamnese ikke registreret"},
    "physical_exam_not_recorded": {
        "en": "no physical examination recorded (tendon xanthoma, corneal arcus)",
        "da": "ingen objektiv undersøgelse registreret (senexantomer, arcus corneae)",
    },
    "dna_test_not_recorded": {"en": "no DNA test", "da": "ingen gentest"},
    "single_ldl_measurement": {
        "en": "only one LDL-C measurement (two are recommended)",
        "da": "kun én LDL-kolesterol-måling (to anbefales)",
    },
    "treatment_dose_unknown": {
        "en": "lipid-lowering drug or dose not in the factor table: the untreated estimate uses x1.43",
        "da": "kolesterolsænkende middel eller dosis ukendt: det ubehandlede niveau er anslået med x1,43",
    },
    "tsh_not_measured": {
        "en": "no TSH within 90 days of the high LDL-C",
        "da": "ingen TSH inden for 90 dage fra det høje LDL-kolesterol",
    },
    "hba1c_not_measured": {
        "en": "no HbA1c within 90 days of the high LDL-C",
        "da": "ingen HbA1c inden for 90 dage fra det høje LDL-kolesterol",
    },
    "tg_not_measured": {
        "en": "no triglycerides within 90 days of the high LDL-C",
        "da": "intet triglycerid inden for 90 dage fra det høje LDL-kolesterol",
    },
}

# Categorical param values in Danish (English text is the value itself, with _ as space).
VALUES_DA: dict[str, str] = {
    "definite": "sikker", "probable": "sandsynlig", "possible": "mulig", "unlikely": "usandsynlig",
    "likely": "sandsynlig", "uncertain": "usikker",
    "first_degree": "førstegradsslægtning med FH", "second_degree": "andengradsslægtning med FH",
    "general": "befolkningsgrænse",
    "measured_untreated": "målt ubehandlet", "estimated_from_treated": "anslået ubehandlet",
    "measured_early_treatment": "målt (ikke omregnet)",
    "under 40": "under 40", "40 and over": "40 og derover",
    "pending": "afventer", "not_fh": "ikke FH", "fh_genetic": "genetisk FH", "fh_clinical": "klinisk FH",
    "did_not_attend": "udeblev", "declined": "takkede nej",
    "tacrolimus": "tacrolimus", "sirolimus": "sirolimus", "everolimus": "everolimus",
    "anabolic steroid": "anabolt steroid", "thiazide-like diuretic": "thiazidlignende diuretikum",
    "sampson": "Sampson", "friedewald": "Friedewald", "gene not stated": "gen ikke oplyst",
    "systemic corticosteroid": "binyrebarkhormon", "ciclosporin": "ciclosporin", "oral retinoid": "retinoid",
    "thiazide diuretic": "thiazid", "HIV protease inhibitor": "HIV-proteasehæmmer",
    "androgen": "androgen",
    "lipid-raising drug": "lægemiddel der kan hæve kolesterol",
}
# English display of the categorical params ``column`` and ``outcome`` (others show as given).
VALUES_EN: dict[str, str] = {
    "first_degree": "first-degree relative with FH", "second_degree": "second-degree relative with FH",
    "general": "general-population cut-off", "not_fh": "not FH", "fh_genetic": "genetic FH",
    "fh_clinical": "clinical FH", "did_not_attend": "did not attend", "declined": "declined",
    "measured_untreated": "measured untreated", "estimated_from_treated": "estimated untreated",
    "measured_early_treatment": "measured (not corrected)",
}
EN_MAPPED_PARAMS = ("column", "outcome", "basis")
# Where a correction factor comes from (``ldl_correction_source`` parts joined by "+").
PROVENANCE: dict[str, dict[str, str]] = {
    "rdrf": {"en": "rdrf table", "da": "rdrf-tabel"},
    "rdrf_product": {"en": "product of rdrf factors", "da": "produkt af rdrf-faktorer"},
    "nice_derived": {"en": "NICE table", "da": "NICE-tabel"},
    "law2003_derived": {"en": "Law 2003", "da": "Law 2003"},
    "fallback_1.43": {"en": "fallback for an unknown drug or dose", "da": "standardfaktor for ukendt middel eller dosis"},
    "eas2014_derived": {"en": "PCSK9 antibody add-on", "da": "tillæg for PCSK9-antistof"},
    "memory_unverified": {"en": "inclisiran add-on (unverified)", "da": "tillæg for inclisiran (ikke verificeret)"},
    "capped at 2.5": {"en": "capped at 2.5", "da": "begrænset til 2,5"},
}
_FIELD = re.compile(r"\{(\w+)\}")
_NUMBER = re.compile(r"^-?\d+\.\d+$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
LANGS = ("da", "en")


def _provenance(text: str, lang: str) -> str:
    return ", ".join(PROVENANCE.get(part, {}).get(lang, part) for part in text.split("+") if part)


def _localise(name: str, value: object, lang: str) -> str:
    text = "" if value is None else str(value)
    if name == "provenance":
        return _provenance(text, lang)
    if lang == "en":
        return VALUES_EN.get(text, text) if name in EN_MAPPED_PARAMS else text
    if _NUMBER.match(text):
        return text.replace(".", ",")
    if m := _DATE.match(text):
        return f"{m[3]}-{m[2]}-{m[1]}"
    return VALUES_DA.get(text, text)


def _items(items: Iterable[dict | str] | str) -> list[dict]:
    if isinstance(items, str):
        items = json.loads(items)
    return [{"code": i, "params": {}} if isinstance(i, str) else i for i in items]


def render(items: Iterable[dict | str] | str, lang: str = "en") -> list[str]:
    """Sentences for reason items (dicts or their JSON list) or missing-item codes.

    Args:
        items: ``[{"code": ..., "params": {...}}, ...]``, the JSON text of such a list, or codes.
        lang: ``"da"`` or ``"en"``.

    Raises:
        KeyError: an unknown code or language (a template is missing: a bug, not a data issue).
    """
    if lang not in LANGS:
        raise KeyError(f"unsupported language {lang!r}")
    out = []
    for item in _items(items):
        template = TEMPLATES[item["code"]][lang]
        params = {k: _localise(k, v, lang) for k, v in (item.get("params") or {}).items()}
        out.append(template.format(**params))
    return out


def text_expr(code: str, params: dict[str, pl.Expr] | None = None) -> pl.Expr:
    """The English sentence for ``code`` as a polars string expression."""
    template = TEMPLATES[code]["en"]
    params = params or {}
    pieces: list[pl.Expr] = []
    pos = 0
    for m in _FIELD.finditer(template):
        if m.start() > pos:
            pieces.append(pl.lit(template[pos:m.start()]))
        value = params[m[1]]
        if m[1] in EN_MAPPED_PARAMS:
            value = value.replace(VALUES_EN)
        elif m[1] == "provenance":
            value = value.str.split("+").list.eval(
                pl.element().replace({k: v["en"] for k, v in PROVENANCE.items()})).list.join(", ")
        pieces.append(value.fill_null(""))
        pos = m.end()
    if pos < len(template):
        pieces.append(pl.lit(template[pos:]))
    return pl.concat_str(pieces) if pieces else pl.lit(template)


def json_expr(code: str, params: dict[str, pl.Expr] | None = None) -> pl.Expr:
    """``{"code": ..., "params": {...}}`` as JSON text (params as strings)."""
    if not params:
        return pl.lit(json.dumps({"code": code, "params": {}}, separators=(",", ":")))
    encoded = pl.struct(**{k: v.cast(pl.Utf8) for k, v in params.items()}).struct.json_encode()
    return pl.concat_str([pl.lit(f'{{"code":"{code}","params":'), encoded, pl.lit("}")])
