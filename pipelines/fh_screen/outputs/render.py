"""Shared rendering: one Jinja environment (autoescaped) for HTML, and HTML -> PDF.

Letters are written once as HTML templates and their PDF is made from the same HTML with
fpdf2's HTML renderer, so the two never disagree. Worklists share the view model instead:
``worklist_pdf`` draws their PDF directly (thousands of lists a night), with this module's
Latin-1 handling and fixed creation date. fpdf2's core fonts are
Latin-1, which covers Danish (æ ø å); any character outside it is replaced, never dropped
silently into an error.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from datetime import datetime, timezone

from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES = Path(__file__).with_name("templates")
EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@lru_cache(maxsize=1)
def jinja_env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(["html", "j2", "xml"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(template: str, **context) -> str:
    return jinja_env().get_template(template).render(**context)


def latin1(text: str) -> str:
    """What the PDF core fonts can show: Latin-1, others replaced by '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def pdf_from_html(pages: list[str], title: str) -> tuple[bytes, int]:
    """One PDF and its page count; each HTML fragment starts a new page (fpdf2 breaks long
    ones itself, so there may be more pages than fragments)."""
    pdf = FPDF(format="A4")
    pdf.set_title(latin1(title))
    pdf.set_creator("fh-screen")
    pdf.set_creation_date(EPOCH)  # reproducible bytes for the same input
    pdf.set_auto_page_break(True, margin=15)
    for fragment in pages:
        pdf.add_page()
        pdf.set_font("helvetica", size=10)
        pdf.write_html(latin1(fragment))
    return bytes(pdf.output()), pdf.pages_count
