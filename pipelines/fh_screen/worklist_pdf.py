"""A practice's worklist as PDF, drawn with fpdf2 calls from the same view model as the HTML.

Direct drawing instead of ``render.pdf_from_html`` because a region renders thousands of
pages a night and the HTML renderer is several times slower; the LDL trend is drawn with
the same coordinates as the HTML's SVG (``worklists.trend_coordinates``). All text goes
through ``render.latin1`` (core fonts are Latin-1, which covers Danish) and is printed as
plain text, never interpreted as markup.
"""

from __future__ import annotations

from fpdf import FPDF

from fh_screen import render
from fh_screen.worklists import TREND_REFERENCE_MMOL, PracticeList, trend_y, trend_coordinates

FONT = "helvetica"
MARGIN = 12
TREND_W, TREND_H, TREND_PAD = 62.0, 20.0, 2.0
BLOCK_MIN_MM = 70  # start a patient on a new page when less than this is left
# Typographic characters outside Latin-1 that the worklist wording uses, as ASCII.
_PUNCTUATION = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'",
                              "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u00a0": " "})


def _t(text: str) -> str:
    """Text the core fonts can print: common punctuation mapped, the rest via latin1()."""
    return render.latin1(text.translate(_PUNCTUATION))


class _WorklistPDF(FPDF):
    def __init__(self, practice: PracticeList):
        super().__init__(format="A4")
        self.practice = practice

    def footer(self):
        w = self.practice.strings
        self.set_y(-12)
        self.set_font(FONT, size=7)
        self.set_text_color(60, 60, 60)
        text = f"{w['disclaimer']}  {self.practice.heading}, {self.practice.as_of.isoformat()}.  {w['page']} {self.page_no()}"
        self.cell(0, 4, _t(text), align="C")
        self.set_text_color(0, 0, 0)


def _text(pdf: FPDF, text: str, size: float = 8.5, style: str = "", height: float = 4.0, indent: float = 0) -> None:
    pdf.set_font(FONT, style=style, size=size)
    pdf.set_x(MARGIN + indent)
    pdf.multi_cell(pdf.epw - indent, height, _t(text), new_x="LMARGIN", new_y="NEXT")


def _bullets(pdf: FPDF, items: list[dict]) -> None:
    for item in items:
        _text(pdf, f"- {item['text']}", indent=3)


def _trend(pdf: FPDF, points, x0: float, y0: float) -> None:
    xs, ys = trend_coordinates(points, TREND_W, TREND_H, TREND_PAD)
    pdf.set_draw_color(107, 107, 107)
    pdf.set_line_width(0.2)
    pdf.rect(x0, y0, TREND_W, TREND_H)
    ref = y0 + trend_y(TREND_REFERENCE_MMOL, points, TREND_H, TREND_PAD)
    pdf.set_draw_color(138, 28, 28)
    pdf.set_dash_pattern(dash=1.2, gap=0.9)
    pdf.line(x0 + TREND_PAD, ref, x0 + TREND_W - TREND_PAD, ref)
    pdf.set_dash_pattern()
    pdf.set_draw_color(11, 61, 145)
    pdf.set_line_width(0.5)
    coords = [(x0 + x, y0 + y) for x, y in zip(xs, ys)]
    if len(coords) > 1:
        pdf.polyline(coords)
    pdf.set_fill_color(11, 61, 145)
    for x, y in coords:
        pdf.circle(x=x, y=y, radius=0.6, style="F")
    pdf.set_draw_color(0, 0, 0)
    pdf.set_line_width(0.2)


def _header(pdf: FPDF, p: PracticeList) -> None:
    w = p.strings
    _text(pdf, w["title"], size=13, style="B", height=6)
    _text(pdf, f"{p.heading}  |  {w['date']}: {p.as_of.isoformat()}", size=10, style="B", height=5)
    c = p.counts
    _text(pdf, f"{w['count_total']}: {c['total']} ({c['new']} {w['count_new']}, {c['reminder']} {w['count_reminder']}, "
               f"{c['check']} {w['count_check']}, {c['children']} {w['count_children']})", size=9, height=5)
    if p.queued:
        _text(pdf, w["queued_note"].format(n=p.queued), size=9, height=5)
    _text(pdf, w["confidential"], size=9, style="B", height=5)
    _text(pdf, w["intro"], size=9, height=4.5)
    pdf.ln(2)


def _patient(pdf: FPDF, x: dict, w: dict) -> None:
    if pdf.get_y() > pdf.h - pdf.b_margin - BLOCK_MIN_MM:
        pdf.add_page()
    pdf.set_draw_color(11, 61, 145)
    pdf.set_line_width(0.6)
    pdf.line(MARGIN, pdf.get_y(), pdf.w - MARGIN, pdf.get_y())
    pdf.set_line_width(0.2)
    pdf.ln(1.5)
    name = f" - {x['name']}" if x["name"] else ""
    _text(pdf, f"{x['rank']}. {w['patient_id']} {x['patient_id']}{name}", size=10.5, style="B", height=5)
    _text(pdf, f"{x['age']}, {x['sex']}  |  {x['event_label']}  |  {x['route_label']}", size=9, height=4.5)
    if x["reminder_note"]:
        _text(pdf, x["reminder_note"], size=8.5, style="I")
    top = pdf.get_y() + 1
    # left: labs; right: trend and scores
    pdf.set_y(top)
    for lab in x["labs"]:
        pdf.set_x(MARGIN)
        pdf.set_font(FONT, style="B", size=8)
        pdf.cell(52, 3.8, _t(lab["test"]))
        pdf.set_font(FONT, size=8)
        pdf.cell(46, 3.8, _t(lab["value"]))
        pdf.cell(20, 3.8, lab["date"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(MARGIN)
    pdf.set_font(FONT, style="B", size=8)
    pdf.cell(0, 3.8, _t(w["treatment"]), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=8)
    for line in x["treatment"] or [w["treatment_none"]]:
        pdf.set_x(MARGIN + 3)
        pdf.cell(0, 3.6, _t(line), new_x="LMARGIN", new_y="NEXT")
    left_bottom = pdf.get_y()
    right = pdf.w - MARGIN - TREND_W
    y = top
    if x["trend"]:
        pdf.set_xy(right, y)
        pdf.set_font(FONT, style="B", size=7.5)
        pdf.cell(TREND_W, 3.5, _t(w["trend"]))
        _trend(pdf, x["trend"], right, y + 3.8)
        y += TREND_H + 5
    pdf.set_font(FONT, size=8)
    for label, value in ((w["dlcn"], x["dlcn"]), (w["simon_broome"], x["simon_broome"]),
                         (w["medped"], x["medped"]), (w["probability"], x["probability"])):
        pdf.set_xy(right, y)
        pdf.cell(TREND_W, 3.6, _t(f"{label}: {value}"))
        y += 3.6
    pdf.set_y(max(left_bottom, y) + 1.5)
    _text(pdf, w["reasons"], style="B")
    _bullets(pdf, x["reasons"])
    if x["checks"]:
        _text(pdf, w["checks"], style="B")
        _bullets(pdf, x["checks"])
    if x["secondary_cause"]:
        _text(pdf, f"{w['secondary_cause']}: {x['secondary_cause']}", style="B")
    _text(pdf, f"{w['action']}: {x['action']}", size=9, style="B", height=4.5)
    pdf.ln(3)


def _footer_block(pdf: FPDF, p: PracticeList) -> None:
    if pdf.get_y() > pdf.h - pdf.b_margin - 30:
        pdf.add_page()
    pdf.ln(2)
    for key in ("how", "rules", "model"):
        _text(pdf, p.footer[key], size=7.5, height=3.6)
    _text(pdf, p.footer["disclaimer"], size=8.5, style="B", height=4.2)


def pdf(practice: PracticeList) -> tuple[bytes, int]:
    """The PDF bytes and page count of one practice's worklist."""
    doc = _WorklistPDF(practice)
    doc.set_title(_t(f"{practice.strings['title']} - {practice.heading}"))
    doc.set_lang(practice.lang)
    doc.set_creator("fh-screen")
    doc.set_creation_date(render.EPOCH)  # same input, same bytes
    doc.set_margins(MARGIN, MARGIN, MARGIN)
    doc.set_auto_page_break(True, margin=16)
    doc.add_page()
    _header(doc, practice)
    for patient in practice.patients:
        _patient(doc, patient, practice.strings)
    _footer_block(doc, practice)
    return bytes(doc.output()), doc.page_no()
