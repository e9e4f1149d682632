"""Worklist files: escaping, accessibility markup, PDF text, CSV safety, file names, languages."""

import csv
import io
import os
import sys
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import referrals_factory as f  # noqa: E402

from fh_screen.stages.referrals import step as r# noqa: E402
from fh_screen.outputs import worklists# noqa: E402
from fh_screen.config import Clinic# noqa: E402
from fh_screen.context import RunContext# noqa: E402
from fh_screen.stages.referrals.step import referrals_step# noqa: E402

EVIL = '<script>alert(1)</script> Ærø "Ø"'
GOLDEN = Path(__file__).with_name("data") / "worklist_P1_en.csv"


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.attrs, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def region(tmp_path, lang="da"):
    rows = [
        f.rule("p1", dlcn_points=9, dlcn_category="definite", ldl_max_treated=True, ldl_untreated_estimate_mmol=9.6,
               ldl_estimate_basis="estimated_from_treated", ldl_estimate_regimen="atorvastatin 40 mg",
               ldl_correction_factor=1.937984),
        f.rule("p2", dlcn_points=7),
        f.rule("p3", route="check_secondary_cause_first", secondary_cause="TSH 14 mIU/L on 2025-03-02",
               reason_items='[{"code":"sec_tsh","params":{"value":"14","date":"2025-03-02"}}]',
               reasons="TSH 14 mIU/L on 2025-03-02"),
        f.rule("kid", age_years=12, is_child=True, dlcn_points=None, dlcn_category="not_calculable", sex="M"),
        f.rule("nogp", practice_id=None),
        f.rule("trav", practice_id="../../evil"),
        f.rule("formula", practice_id="P2"),
    ]
    people = f.patients_frame(rows, nogp={"practice_id": None})
    labs = [
        {"result_id": f"l{i}", "patient_id": "p1", "sampled_at": datetime(2019 + i, 3, 1), "analyte": "ldl",
         "value": v, "status": "final"}
        for i, v in enumerate([5.2, 6.1, 7.9, 4.1])
    ] + [
        {"result_id": "x1", "patient_id": "p1", "sampled_at": datetime(2024, 3, 1), "analyte": "ldl", "value": 99.0,
         "status": "cancelled"},
        {"result_id": "t1", "patient_id": "p1", "sampled_at": datetime(2022, 3, 1), "analyte": "tc", "value": 10.2,
         "status": "final"},
        {"result_id": "h1", "patient_id": "p1", "sampled_at": datetime(2022, 3, 1), "analyte": "hdl", "value": 1.3,
         "status": "final"},
        {"result_id": "g1", "patient_id": "p1", "sampled_at": datetime(2022, 3, 1), "analyte": "tg", "value": 1.6,
         "status": "final"},
    ]
    meds = [{"patient_id": "p1", "atc_code": "C10AA05", "dispensed_on": date(2026, 9, 1), "strength_mg": 40.0},
            {"patient_id": "p1", "atc_code": "C10AA01", "dispensed_on": date(2020, 1, 1), "strength_mg": 20.0}]
    contacts = [{"patient_id": "p1", "full_name": EVIL},
                {"patient_id": "formula", "full_name": "=HYPERLINK(\"http://x\")"},
                {"patient_id": "p2", "full_name": "Łukasz 王"}]
    db_path = f.build_db(tmp_path / "r.duckdb", rows, patients=people, labs=labs, meds=meds, contacts=contacts)
    cfg = f.settings(lang=lang, clinics=[
        Clinic(clinic_id="LK", name="Lipidklinik Nord", weekly_capacity=20, postcodes=["5"]),
        Clinic(clinic_id="PAED", name="Børnelipidklinik", weekly_capacity=5, paediatric=True),
    ])
    ctx = f.context(tmp_path, db_path, cfg=cfg)
    report = referrals_step(ctx)
    return ctx, report


def fixed_region(tmp_path, lang):
    """The region rendered with the English reasons fallback, so snapshots do not depend
    on the wording of the rules engine's renderer (tested separately below)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(r, "explain_reasons", None)
        return region(tmp_path, lang)


@pytest.fixture(scope="module")
def danish(tmp_path_factory):
    return fixed_region(tmp_path_factory.mktemp("da"), "da")


@pytest.fixture(scope="module")
def english(tmp_path_factory):
    return fixed_region(tmp_path_factory.mktemp("en"), "en")


def fake_explain(items, lang):
    if any(i["code"] == "unknown" for i in items):
        raise KeyError("unknown")
    return [f"{lang}:{i['code']}" for i in items]


def test_reasons_render_in_the_worklist_language_when_the_rules_renderer_knows_them():
    row = {"reason_items": '[{"code": "ldl_high", "params": {}}]', "reasons": "LDL high",
           "missing_items": ["family_history_not_recorded", "lpa_not_measured"], "missing_information": "x"}
    assert worklists.reason_lines(row, "da", fake_explain) == [{"text": "Da:ldl_high", "lang": "da"}]
    checks = worklists.check_lines(row, "da", fake_explain)
    assert checks[0]["text"].startswith("Familieanamnese") and checks[1] == {"text": "Da:lpa_not_measured", "lang": "da"}


def test_reasons_fall_back_to_the_english_text_marked_as_english():
    row = {"reason_items": '[{"code": "unknown", "params": {}}]', "reasons": "LDL high; TC high",
           "missing_items": ["unknown"], "missing_information": "something missing; another"}
    assert worklists.reason_lines(row, "da", fake_explain) == [
        {"text": "LDL high", "lang": "en"}, {"text": "TC high", "lang": "en"}]
    assert worklists.check_lines(row, "da", fake_explain) == [
        {"text": "Something missing", "lang": "en"}, {"text": "Another", "lang": "en"}]
    assert worklists.reason_lines(row, "da", None)[0]["lang"] == "en"


def test_patient_text_is_escaped_in_html(danish):
    ctx, _ = danish
    page = (ctx.work_dir / "worklists" / "P1.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Ærø &#34;Ø&#34;" in page
    parsed = Tags()
    parsed.feed(page)
    assert "script" not in parsed.tags
    assert EVIL in "".join(parsed.text)  # shown to the GP as text, exactly


def test_html_is_semantic_and_self_contained(danish):
    ctx, _ = danish
    page = (ctx.work_dir / "worklists" / "P1.html").read_text(encoding="utf-8")
    parsed = Tags()
    parsed.feed(page)
    assert parsed.attrs[0] == ("html", {"lang": "da"})
    for tag in ("h1", "h2", "h3", "table", "caption", "thead", "main", "header", "footer", "svg"):
        assert tag in parsed.tags, tag
    scopes = [a.get("scope") for t, a in parsed.attrs if t == "th"]
    assert "col" in scopes and "row" in scopes and None not in scopes
    svg = [a for t, a in parsed.attrs if t == "svg"]
    assert svg and all(a["role"] == "img" and a["aria-label"] for a in svg)
    assert "@media print" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page
    assert "<link" not in page and "src=" not in page


def test_html_content_for_the_gp(danish):
    ctx, _ = danish
    page = (ctx.work_dir / "worklists" / "P1.html").read_text(encoding="utf-8")
    assert "Praksis P1" in page and "2026-11-23" in page
    assert "9,60 mmol/L (anslået ubehandlet ud fra atorvastatin 40 mg, x1,938)" in page
    assert "i behandling ved prøven" in page
    assert "Seneste LDL-kolesterol" in page and "4,1 mmol/L" in page  # latest; the cancelled 99 is ignored
    assert "99,0" not in page
    assert "atorvastatin 40 mg (2026-09-01)" in page and "simvastatin" not in page  # older than 12 months
    assert "Familieanamnese" in page and "senexantomer" in page
    assert "TSH 14 mIU/L on 2025-03-02" in page and "Tjek først" in page  # English fallback: no renderer here
    assert "Børnelipidklinik (børn og unge)" in page
    assert "Beslutningsstøtte til klinikere – ikke en diagnose." in page
    assert "dlcn dlcn_v1" in page and "ingen model brugt" in page


def test_pdf_text_can_be_extracted_and_says_what_the_html_says(danish):
    ctx, report = danish
    reader = PdfReader(ctx.work_dir / "worklists" / "P1.pdf")
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert EVIL in text
    assert "?ukasz ?" in text  # outside Latin-1: replaced, never an error
    assert "Praksis P1" in text and "Beslutningsstøtte til klinikere - ikke en diagnose." in text
    assert "Overvej henvisning til Lipidklinik Nord til udredning for FH." in text
    assert "TSH 14 mIU/L on 2025-03-02" in text
    assert text.index("Patient-id p1") < text.index("Patient-id p2")  # rank order
    assert report["pdf_pages"] >= len(reader.pages)


def test_unassigned_list_and_sanitised_file_names(danish):
    ctx, _ = danish
    folder = ctx.work_dir / "worklists"
    names = sorted(p.name for p in folder.iterdir() if p.is_file())
    assert names == sorted(f"{s}.{e}" for s in ("P1", "P2", "UNASSIGNED", "evil") for e in ("csv", "html", "pdf"))
    page = (folder / "UNASSIGNED.html").read_text(encoding="utf-8")
    assert "Patienter uden egen læge (regional liste)" in page
    assert "Praksis ../../evil" in (folder / "evil.html").read_text(encoding="utf-8")
    assert not (ctx.work_dir.parent / "evil.html").exists()


def test_csv_cells_are_never_formulas(danish):
    ctx, _ = danish
    rows = list(csv.DictReader(io.StringIO((ctx.work_dir / "worklists" / "P2.csv").read_text(encoding="utf-8"))))
    assert rows[0]["name"] == "'=HYPERLINK(\"http://x\")"


def test_english_worklist_and_golden_csv(english):
    ctx, _ = english
    page = (ctx.work_dir / "worklists" / "P1.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in page
    assert "Decision support for clinicians, not a diagnosis." in page
    assert "Ask about" not in page and "Family history:" in page and "tendon xanthomata" in page
    current = (ctx.work_dir / "worklists" / "P1.csv").read_text(encoding="utf-8")
    if os.environ.get("FH_UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(current, encoding="utf-8")
    assert current == GOLDEN.read_text(encoding="utf-8")


def test_reminder_entries_say_when_the_patient_was_listed():
    cfg = f.settings(lang="en", clinics=[])
    rows = [f.rule("a")]
    first, _ = r.plan_referrals(f.rules_frame(rows), None, f.patients_frame(rows), f.outcomes_frame(),
                                r.empty_events(), cfg, date(2026, 1, 15))
    history = r.events_frame(first, date(2026, 1, 15))
    later, _ = r.plan_referrals(f.rules_frame(rows), None, f.patients_frame(rows), f.outcomes_frame(),
                                history, cfg, date(2026, 7, 15))
    details = {"a": {"labs": {}, "drugs": [], "name": None}}
    ctx = RunContext(settings=cfg, db_path=Path("x"), out_dir=Path("x"), work_dir=Path("x"), as_of=date(2026, 7, 15))
    [practice] = worklists.practice_lists(later, details, ctx)
    [entry] = practice.patients
    assert entry["event_label"] == "Reminder"
    assert entry["reminder_note"] == (
        "Reminder: this patient was listed on 2026-01-15 and no lipid-clinic outcome has been received."
    )
    assert practice.counts == {"total": 1, "new": 0, "reminder": 1, "check": 0, "children": 0}
    assert "Rules: not recorded" in practice.footer["rules"]


def test_trend_svg_escapes_its_label_and_draws_every_point():
    svg = worklists.trend_svg([(date(2020, 1, 1), 5.0), (date(2021, 1, 1), 6.0), (date(2023, 1, 1), 8.5)],
                              'LDL "<b>"')
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    assert svg.count("<circle") == 3
    assert worklists.trend_svg([], "x") == ""


def test_file_stems_keep_distinct_ids_distinct():
    stems = worklists.file_stems(["a/b", "a_b", "a b"])
    assert len(set(stems.values())) == 3
    assert all("/" not in s for s in stems.values())


def test_numbers_use_the_reader_s_decimal_mark():
    assert worklists.num(7.25, "da", 2) == "7,25" and worklists.num(7.25, "en", 2) == "7.25"
    assert worklists.num(None, "da") == "–"


def test_empty_night_writes_an_empty_referrals_csv(tmp_path):
    db_path = f.build_db(tmp_path / "r.duckdb", [f.rule("a", dlcn_points=1, lab_flag=False, simon_broome="not_met")])
    ctx = f.context(tmp_path, db_path)
    report = referrals_step(ctx)
    assert pl.read_csv(ctx.work_dir / "referrals.csv").height == 0
    assert report["practices"] == 0 and report["fhir_bundles"] == 0


def test_with_the_rules_engine_renderer_missing_items_become_danish_prompts():
    explain = pytest.importorskip("fh_screen.stages.rules.explain", reason="rules engine not in this tree").render
    row = {"reason_items": '[{"code": "no_ldl", "params": {}}]', "reasons": "no LDL-C result",
           "missing_items": ["family_history_not_recorded", "tsh_not_measured"], "missing_information": "x"}
    [reason] = worklists.reason_lines(row, "da", explain)
    assert reason["lang"] == "da" and reason["text"] != "No LDL-C result"
    checks = worklists.check_lines(row, "da", explain)
    assert [c["lang"] for c in checks] == ["da", "da"]
    assert checks[0]["text"].startswith("Familieanamnese")
