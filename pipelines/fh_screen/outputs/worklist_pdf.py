"""A practice's worklist as PDF, drawn with fpdf2 calls from the same view model as the HTML.

Direct drawing instead of ``render.pdf_from_html`` because a region renders thousands of
pages a night. fpdf2's own line breaking (``multi_cell``) re-measures the line for every
character, which made it the bottleneck (~5 pages/s); here lines are wrapped once per
distinct text with the core-font width tables (cached: most wording repeats from patient
to patient) and placed with ``FPDF.text``. The LDL trend is drawn with the same
coordinates as the HTML's SVG (``worklists.trend_coordinates``). All text goes through
``_t`` (core fonts are Latin-1, which covers Danish) and is printed as plain text, never
interpreted as markup.
"""

from __future__ import annotations

from functools import lru_cache

from fpdf import FPDF
from fpdf.fonts import CORE_FONTS_CHARWIDTHS

from fh_screen.outputs import render
from fh_screen.outputs.worklists import TREND_REFERENCE_MMOL, PracticeList, trend_coordinates, trend_y

FONT = "helvetica"
MARGIN = 12
BOTTOM = 16
TREND_W, TREND_H, TREND_PAD = 62.0, 20.0, 2.0
BLOCK_MIN_MM = 70  # start a patient on a new page when less than this is left
BASELINE = 0.78    # baseline position within a line, as a share of the line height
# Typographic characters outside Latin-1 that the worklist wording uses, as ASCII.
_PUNCTUATION = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2018": "'", "\u2019": "'",
                              "\u201c": '"', "\u201d": '"', "\u2026": "...", "\u00a0": " "})


def _t(text: str) -> str:
    """Text the core fonts can print: common punctuation mapped, the rest via latin1()."""
    return render.latin1(text.translate(_PUNCTUATION))


WORD_CACHE_CHARS = 64   # widths of longer words are not cached (a cache of every suffix grew quadratically)


@lru_cache(maxsize=50_000)
def _cached_width(fontkey: str, word: str) -> int:
    widths = CORE_FONTS_CHARWIDTHS[fontkey]
    return sum(widths.get(c, 500) for c in word)


def _word_width(fontkey: str, word: str) -> int:
    if len(word) <= WORD_CACHE_CHARS:
        return _cached_width(fontkey, word)
    widths = CORE_FONTS_CHARWIDTHS[fontkey]
    return sum(widths.get(c, 500) for c in word)


@lru_cache(maxsize=20_000)
def wrap(fontkey: str, size_pt: float, width_mm: float, text: str) -> tuple[str, ...]:
    """Greedy word wrap of Latin-1 ``text`` to ``width_mm``; words longer than a line are cut.

    Linear in the length of the text: each character's width is looked up once, and a long
    word is cut at positions, never copied suffix by suffix."""
    limit = width_mm * 72 / 25.4 * 1000 / size_pt  # in font units (1/1000 em)
    widths = CORE_FONTS_CHARWIDTHS[fontkey]
    space = _word_width(fontkey, " ")
    lines, current, used = [], [], 0
    for word in text.split():
        w = _word_width(fontkey, word)
        if w > limit:  # an unbreakable run (an id, a URL): cut it at the limit
            if current:
                lines.append(" ".join(current))
                current, used = [], 0
            start = 0
            while w > limit:
                cut, acc = start, 0
                while cut < len(word) and acc + widths.get(word[cut], 500) <= limit:
                    acc += widths.get(word[cut], 500)
                    cut += 1
                if cut == start:   # one glyph wider than the line
                    acc, cut = widths.get(word[start], 500), start + 1
                lines.append(word[start:cut])
                w -= acc
                start = cut
            word = word[start:]
            if not word:
                continue
        extra = w if not current else used + space + w
        if current and extra > limit:
            lines.append(" ".join(current))
            current, used = [word], w
        else:
            current.append(word)
            used = extra
    if current:
        lines.append(" ".join(current))
    return tuple(lines) or ("",)


class _WorklistPDF(FPDF):
    def __init__(self, practice: PracticeList):
        super().__init__(format="A4")
        self.practice = practice

    def footer(self):
        w = self.practice.strings
        self.set_font(FONT, size=7)
        self.set_text_color(60, 60, 60)
        text = _t(f"{w['disclaimer']}  {self.practice.heading}, {self.practice.as_of.isoformat()}.  "
                  f"{w['page']} {self.page_no()}")
        self.text(MARGIN, self.h - 8, text)
        self.set_text_color(0, 0, 0)

    def lines(self, text: str, size: float = 8.5, style: str = "", height: float = 4.0, indent: float = 0) -> None:
        """Wrapped text from the current y, breaking pages between lines."""
        self.set_font(FONT, style=style, size=size)
        for line in wrap(FONT + style, size, self.epw - indent, _t(text)):
            if self.get_y() + height > self.page_break_trigger:
                self.add_page()
            self.text(MARGIN + indent, self.get_y() + height * BASELINE, line)
            self.set_y(self.get_y() + height)

    def at(self, x: float, y: float, width: float, text: str, size: float = 8, style: str = "",
           height: float = 3.6) -> float:
        """Wrapped text in a column at (x, y) with no page break; returns the y below it."""
        self.set_font(FONT, style=style, size=size)
        for line in wrap(FONT + style, size, width, _t(text)):
            self.text(x, y + height * BASELINE, line)
            y += height
        return y


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


def _header(pdf: _WorklistPDF, p: PracticeList) -> None:
    w, c = p.strings, p.counts
    pdf.lines(w["title"], size=13, style="B", height=6)
    pdf.lines(f"{p.heading}  |  {w['date']}: {p.as_of.isoformat()}", size=10, style="B", height=5)
    pdf.lines(f"{w['count_total']}: {c['total']} ({c['new']} {w['count_new']}, {c['reminder']} {w['count_reminder']}, "
              f"{c['check']} {w['count_check']}, {c['children']} {w['count_children']})", size=9, height=5)
    if p.coming:
        pdf.lines(w["coming_intro"], size=9, height=5)
        for line in p.coming:
            pdf.lines(line, size=9, height=5)
    pdf.lines(w["confidential"], size=9, style="B", height=5)
    pdf.lines(w["intro"], size=9, height=4.5)
    pdf.set_y(pdf.get_y() + 2)


def _patient(pdf: _WorklistPDF, x: dict, w: dict) -> None:
    if pdf.get_y() > pdf.h - BOTTOM - BLOCK_MIN_MM:
        pdf.add_page()
    pdf.set_draw_color(11, 61, 145)
    pdf.set_line_width(0.6)
    pdf.line(MARGIN, pdf.get_y(), pdf.w - MARGIN, pdf.get_y())
    pdf.set_line_width(0.2)
    pdf.set_y(pdf.get_y() + 1.5)
    name = f" - {x['name']}" if x["name"] else ""
    pdf.lines(f"{x['rank']}. {w['patient_id']} {x['patient_id']}{name}", size=10.5, style="B", height=5)
    pdf.lines(f"{x['age']}, {x['sex']}  |  {x['event_label']}  |  {x['route_label']}", size=9, height=4.5)
    if x["reminder_note"]:
        pdf.lines(x["reminder_note"], style="I")
    top = pdf.get_y() + 1
    # left column: labs and treatment; right column: trend and scores
    y = top
    for lab in x["labs"]:
        y_next = pdf.at(MARGIN, y, 50, lab["test"], style="B", height=3.8)
        pdf.at(MARGIN + 52, y, 44, lab["value"], height=3.8)
        pdf.at(MARGIN + 98, y, 20, lab["date"], height=3.8)
        y = y_next
    y = pdf.at(MARGIN, y, 118, w["treatment"], style="B", height=3.8)
    for line in x["treatment"] or [w["treatment_none"]]:
        y = pdf.at(MARGIN + 3, y, 115, line)
    left_bottom = y
    right = pdf.w - MARGIN - TREND_W
    y = top
    if x["trend"]:
        pdf.at(right, y, TREND_W, w["trend"], size=7.5, style="B", height=3.5)
        _trend(pdf, x["trend"], right, y + 3.8)
        y += TREND_H + 5
    for label, value in ((w["dlcn"], x["dlcn"]), (w["simon_broome"], x["simon_broome"]),
                         (w["medped"], x["medped"]), (w["probability"], x["probability"])):
        y = pdf.at(right, y, TREND_W, f"{label}: {value}")
    pdf.set_y(max(left_bottom, y) + 1.5)
    pdf.lines(w["reasons"], style="B")
    for item in x["reasons"]:
        pdf.lines(f"- {item['text']}", indent=3)
    if x["checks"]:
        pdf.lines(w["checks"], style="B")
        for item in x["checks"]:
            pdf.lines(f"- {item['text']}", indent=3)
    if x["secondary_cause"]:
        pdf.lines(f"{w['secondary_cause']}: {x['secondary_cause']}", style="B")
    pdf.lines(f"{w['action']}: {x['action']}", size=9, style="B", height=4.5)
    pdf.lines(x["slot"], size=9, height=4.5)
    pdf.set_y(pdf.get_y() + 3)


def _footer_block(pdf: _WorklistPDF, p: PracticeList) -> None:
    if pdf.get_y() > pdf.h - BOTTOM - 30:
        pdf.add_page()
    pdf.set_y(pdf.get_y() + 2)
    for key in ("how", "rules", "model"):
        pdf.lines(p.footer[key], size=7.5, height=3.6)
    pdf.lines(p.footer["disclaimer"], size=8.5, style="B", height=4.2)


def pdf(practice: PracticeList) -> tuple[bytes, int]:
    """The PDF bytes and page count of one practice's worklist."""
    doc = _WorklistPDF(practice)
    doc.set_title(_t(f"{practice.strings['title']} - {practice.heading}"))
    doc.set_lang(practice.lang)
    doc.set_creator("fh-screen")
    doc.set_creation_date(render.EPOCH)  # same input, same bytes
    doc.set_margins(MARGIN, MARGIN, MARGIN)
    doc.set_auto_page_break(True, margin=BOTTOM)
    doc.add_page()
    _header(doc, practice)
    for patient in practice.patients:
        _patient(doc, patient, practice.strings)
    _footer_block(doc, practice)
    return bytes(doc.output()), doc.page_no()
