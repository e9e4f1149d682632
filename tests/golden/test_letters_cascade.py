"""Cascade letter templates in Danish and English: escaping, PDF text, wording, snapshots.

Snapshots live in tests/golden/snapshots/; after a deliberate wording change regenerate
them with ``UPDATE_GOLDEN=1 pytest tests/golden/test_letters_cascade.py``.
"""

import io
import os
from datetime import date
from pathlib import Path

import pypdf
import pytest

from fh_screen.outputs import letters as cascade_letters
from fh_screen.config import load_settings

SNAPSHOTS = Path(__file__).with_name("snapshots")
HOSTILE = 'Åse "Ø" O\'Brien-Ærø <script>alert(1)</script> & Søn'
RECIPIENT = {"full_name": HOSTILE, "address": "Æblevej 1 <b>", "postcode": "5000", "city": "Ørbæk"}
CONTEXT = {
    "clinic": "Lipidklinik Nord",
    "children_clinic": "Børnelipidklinik",
    "region": "Region Test",
    "date": "1. februar 2026",
}
LANGS = ("da", "en")


def page(kind, lang, **extra):
    context = dict(CONTEXT, **extra)
    if kind == "index":
        context.setdefault("for_child", False)
        context.setdefault("to_guardians", False)
    if kind != "family":
        context.setdefault("recipient", RECIPIENT)
    return cascade_letters.render_letter(kind, lang, **context)


def pdf_text(pages, title="t"):
    pdf = cascade_letters._document(pages, title, "da").pdf
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(p.extract_text() for p in reader.pages)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("kind", ["index", "relative"])
def test_names_are_escaped_in_html_and_kept_as_text_in_pdf(kind, lang):
    extra = {"about_self": True, "n_children": 0} if kind == "relative" else {}
    html = page(kind, lang, **extra)
    assert "<script>" not in html and "Æblevej 1 <b>" not in html
    assert "Æblevej 1 &lt;b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;Ø&#34;" in html and "O&#39;Brien-Ærø" in html and "&amp; Søn" in html
    text = pdf_text([html])
    assert "<script>alert(1)</script>" in text
    assert 'Åse "Ø" O\'Brien-Ærø' in text
    assert "Æblevej 1 <b>" in text and "Ørbæk" in text


@pytest.mark.parametrize("lang", LANGS)
def test_family_letter_cannot_name_anybody(lang):
    # even if a recipient were passed by mistake, the template has nowhere to put it
    html = page("family", lang, recipient=RECIPIENT)
    for part in ("Åse", "Brien", "Æblevej", "Ørbæk", "script"):
        assert part not in html


@pytest.mark.parametrize(
    ("lang", "phrases"),
    [
        ("en", ["1 in 2 chance (50%)", "statins", "ask for a cholesterol blood test", "by the age of 10", "Lipidklinik Nord", "does not mean that you have FH"]),
        ("da", ["1 ud af 2 (50 %)", "statiner", "bed om en blodprøve for kolesterol", "inden de fylder 10 år", "Lipidklinik Nord", "Det betyder ikke, at du har FH"]),
    ],
)
def test_family_letter_says_what_fh_is_the_risk_the_treatment_and_what_to_do(lang, phrases):
    text = pdf_text([page("family", lang)])
    for phrase in phrases:
        assert phrase in text.replace("\n", " ")


@pytest.mark.parametrize("lang", LANGS)
def test_letter_to_a_parent_about_children_only(lang):
    html = page("relative", lang, about_self=False, n_children=2)
    text = pdf_text([html]).replace("\n", " ")
    if lang == "en":
        assert "about your children under 18" in text and "Could you have it?" not in text
        assert "refer your children to Børnelipidklinik" in text
        assert "does not mean that your children have FH" in text
    else:
        assert "om dine børn under 18 år" in text and "Kan du have det?" not in text
        assert "henvise til Børnelipidklinik" in text
        assert "Det betyder ikke, at dine børn har FH" in text


@pytest.mark.parametrize("lang", LANGS)
def test_relative_letter_never_names_the_index_case(lang):
    html = page("relative", lang, about_self=True, n_children=1)
    # only the recipient's own name and address are personal data in it
    assert html.count("Åse") == 2  # address block + salutation


def test_index_letter_pdf_encloses_the_family_letter_as_page_two():
    document = cascade_letters._document([page("index", "da"), page("family", "da")], "FH", "da")
    reader = pypdf.PdfReader(io.BytesIO(document.pdf))
    assert len(reader.pages) == document.pages == 2
    assert "Information til din familie" in reader.pages[1].extract_text()
    assert "Åse" not in reader.pages[1].extract_text()


def test_dates_in_both_languages():
    assert cascade_letters.format_date(date(2026, 2, 1), "da") == "1. februar 2026"
    assert cascade_letters.format_date(date(2026, 12, 24), "en") == "24 December 2026"


def test_clinic_by_postcode_prefix():
    settings = load_settings()
    assert cascade_letters.clinic_name(settings, "5000") == "Lipidklinik Nord"
    assert cascade_letters.clinic_name(settings, "8200") == "Lipidklinik Syd"
    assert cascade_letters.clinic_name(settings, None) == "Lipidklinik Nord"  # first adult clinic
    assert cascade_letters.paediatric_clinic_name(settings) == "Børnelipidklinik"


@pytest.mark.parametrize("lang", LANGS)
def test_family_letter_snapshot(lang):
    html = cascade_letters._document([page("family", lang)], "FH", lang).html
    snap = SNAPSHOTS / f"cascade_family_letter.{lang}.html"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        snap.parent.mkdir(exist_ok=True)
        snap.write_text(html, encoding="utf-8")
    assert html == snap.read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", LANGS)
def test_index_letter_for_a_child_goes_to_the_parents(lang):
    to_parent = pdf_text([page("index", lang, for_child=True)]).replace("\n", " ")
    guardians = pdf_text([page("index", lang, for_child=True, to_guardians=True)]).replace("\n", " ")
    if lang == "en":
        assert "found that your child has familial hypercholesterolaemia" in to_parent
        assert "Dear Åse" in to_parent and "both parents should have a cholesterol test" in to_parent
        assert "To the parents or guardians of Åse" in guardians and "Dear parent or guardian" in guardians
        assert "please contact Børnelipidklinik" in to_parent
    else:
        assert "fundet ud af, at dit barn har familiær hyperkolesterolæmi" in to_parent
        assert "Kære Åse" in to_parent and "begge forældre bør få taget en kolesterolprøve" in to_parent
        assert "Til forældre eller værge for Åse" in guardians and "Kære forælder eller værge" in guardians
