"""The evaluator report's charts and pages, and a clinic page, opened in headless Chromium.

Charts must read well with one point or many, empty or full: each chart is drawn for those
cases by the report's own plotting functions, shown in the browser and screenshotted; the
report's funnel, trends, cascade and yardstick pages and one clinic page are screenshotted
too. Checks: the page is drawn (not blank, not black), the chart's bars are there, and the
count axes start at 0 with no negative ticks.

Skipped without Chromium unless FH_REQUIRE_BROWSER=1 (as the worklist browser test).
Screenshots are left in the test's temporary folder (``--basetemp`` to keep them).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from metrics_fake import AS_OF, make_region_db  # noqa: E402
from test_worklist_browser import run_chromium  # noqa: E402

from fh_screen.app.run import prepare  # noqa: E402
from fh_screen.outputs import metrics_report as report  # noqa: E402
from fh_screen.stages.metrics import pilot, step  # noqa: E402

pytestmark = pytest.mark.browser
NAN = math.nan
BAR_BLUE = (0x3B, 0x6E, 0xA5)


def page(title: str, body: str) -> str:
    return f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head>' \
           f'<body style="margin:16px;font-family:sans-serif;background:#fff">{body}</body></html>'


def cell(v):
    return {"value": None, "status": "suppressed"} if v is None else {"value": v, "status": "ok"}


CHARTS = {
    "trend_one_month": lambda: report._month_bars(["2026-11"], {"referred": [50.0], "attended": [10.0],
                                                                  "confirmed": [NAN]}, "people"),
    "trend_twelve_months": lambda: report._month_bars(
        [f"2026-{m:02d}" for m in range(1, 13)],
        {"referred": [40.0 + 5 * m for m in range(12)], "attended": [10.0 + m for m in range(12)],
         "confirmed": [NAN if m % 4 == 0 else 10.0 for m in range(12)]}, "people"),
    "trend_all_zero": lambda: report._month_bars(["2026-11", "2026-12"], {"referred": [0.0, 0.0]}, "people"),
    "funnel_full": lambda: report._funnel_plot({m: cell(v) for m, v in zip(
        report.FUNNEL_LABELS, (30000, 15000, 400, 250, 90, 25))}),
    "funnel_mostly_withheld": lambda: report._funnel_plot({m: cell(v) for m, v in zip(
        report.FUNNEL_LABELS, (200, 120, None, None, None, 0))}),
    "calibration_one_point": lambda: report._calibration_plot([
        {"predicted": cell(0.3), "observed": cell(0.25)}]),
    "calibration_five_points": lambda: report._calibration_plot([
        {"predicted": cell(p), "observed": cell(o)} for p, o in ((0.1, 0.08), (0.3, 0.35), (0.5, None),
                                                                (0.7, 0.66), (0.9, 0.93))]),
}


def png_pixels(path: Path):
    import matplotlib.image

    return matplotlib.image.imread(path)[..., :3]


def assert_drawn(path: Path, colour=BAR_BLUE, min_coloured: int = 50):
    pixels = png_pixels(path)
    dark = (pixels.mean(axis=2) < 0.5).mean()
    assert 0.002 < dark < 0.5, f"{path.name}: blank or black page ({dark:.4f} dark)"
    if colour is not None:
        target = [c / 255 for c in colour]
        near = (abs(pixels[..., 0] - target[0]) < 0.08) & (abs(pixels[..., 1] - target[1]) < 0.08) & \
               (abs(pixels[..., 2] - target[2]) < 0.08)
        assert near.sum() >= min_coloured, f"{path.name}: the chart's bars are missing"


def tick_labels(svg: str) -> list[str]:
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("report-shots")


@pytest.mark.parametrize("name", sorted(CHARTS))
def test_each_chart_reads_well(name, shots):
    svg = CHARTS[name]()
    labels = tick_labels(svg)
    assert labels, "chart text is kept as text"
    assert not [t for t in labels if t.strip().startswith(("\u2212", "-")) and re.search(r"\d", t)], labels
    if name.startswith("trend"):
        assert "0" in labels                                 # the count axis starts at 0
        assert all(float(t) == int(float(t)) for t in labels if re.fullmatch(r"\d+(\.\d+)?", t))
    if "withheld" in name or name == "trend_one_month":
        assert {"withheld", "w"} & {t.strip() for t in labels}
    html = shots / f"{name}.html"
    html.write_text(page(name, svg), encoding="utf-8")
    png = shots / f"{name}.png"
    run_chromium([f"--screenshot={png}", "--window-size=900,500", html.as_uri()], shots)
    assert_drawn(png, colour=None if name.startswith("calibration") or name == "trend_all_zero" else BAR_BLUE)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report-region")
    ctx = prepare(None, make_region_db(folder / "r.duckdb", "S", 1500, 5), folder / "out", AS_OF)
    return report.build_report(pilot.pilot_document(step.region_aggregates(ctx)))


@pytest.mark.parametrize("section", ["funnel", "trends", "cascade", "yardsticks"])
def test_report_pages_in_the_browser(section, report_html, shots):
    head = report_html[:report_html.index("</head>") + len("</head>")]
    start = report_html.index(f'<section id="{section}">')
    body = report_html[start:report_html.index("</section>", start) + len("</section>")]
    html = shots / f"report_{section}.html"
    html.write_text(f"{head}<body>{body}</body></html>", encoding="utf-8")
    png = shots / f"report_{section}.png"
    run_chromium([f"--screenshot={png}", "--window-size=1100,900", html.as_uri()], shots)
    assert_drawn(png, colour=BAR_BLUE if section in ("funnel", "trends") else None)


def test_a_clinic_page_in_the_browser(shots):
    from test_clinic_queue import region, settings  # noqa: F401  (the clinic test's region)
    import referrals_factory as f
    from datetime import timedelta

    from fh_screen.stages.referrals.step import referrals_step

    rows, people, scores = region()
    db_path = f.build_db(shots / "clinic.duckdb", rows, patients=people, scores=scores)
    referrals_step(f.context(shots, db_path, cfg=settings()))
    ctx = f.context(shots, db_path, AS_OF + timedelta(days=1), cfg=settings())
    referrals_step(ctx)
    clinic = ctx.work_dir / "clinics" / "LK.html"
    png = shots / "clinic_LK.png"
    run_chromium([f"--screenshot={png}", "--window-size=1100,1400", clinic.as_uri()], shots)
    assert_drawn(png, colour=(0x3B, 0x6E, 0xA5), min_coloured=20)   # the section rules
