"""The self-contained HTML report for evaluators, built only from ``pilot_metrics.json``
(already suppressed), so a region's report and the national one come from the same code
and nothing withheld can reach a plot. Plots are inline SVG from matplotlib (Agg): no
scripts, no CDN, one file that opens offline.
"""

from __future__ import annotations

import io
import math

from fh_screen.outputs import render

from fh_screen.outputs import metrics_schema as S
from fh_screen.outputs import yardsticks

FUNNEL_LABELS = {
    "population": "Population", "tested": "Lipid tested", "flagged": "Flagged", "referred": "Referred",
    "attended": "Attended clinic", "confirmed": "FH confirmed",
}
EQUITY_RATES = ("tested_share", "flagged_share", "referred_share", "attended_share",
                "confirmed_share_of_attended", "treatment_changed_share")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Text stays text in the SVG (selectable, read by screen readers, smaller files).
    plt.rcParams.update({"svg.hashsalt": "fh-screen", "font.size": 9, "figure.dpi": 100, "svg.fonttype": "none"})
    return plt


def _svg(fig) -> str:
    """Inline SVG markup without the XML prolog (reproducible: fixed salt, no date)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    _plt().close(fig)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _num(cell: dict | None) -> float:
    return float(cell["value"]) if cell and cell["status"] == "ok" and cell["value"] is not None else math.nan


def _any_value(series: dict[str, list[float]]) -> bool:
    """Whether a plot would show anything (withheld values are NaN)."""
    return any(not math.isnan(v) for values in series.values() for v in values)


WITHHELD_COLOUR = "#8a5a00"
SERIES_COLOURS = ("#3b6ea5", "#d98c1f", "#4f9a55", "#9b59b6")   # the report's blue first


def _count_axis(axis, values: list[float]) -> float:
    """Whole-number ticks on a count axis; returns its top: room above the largest value,
    whatever the data: one point, many, all zero or all withheld (never -0.04 to 0.04)."""
    from matplotlib.ticker import MaxNLocator

    shown = [v for v in values if not math.isnan(v)]
    top = max(shown, default=0)
    axis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    return top * 1.15 if top > 0 else 5


def _funnel_plot(headline: dict) -> str:
    """Horizontal bars of the funnel steps on a log scale (population and confirmed differ by
    thousands), each labelled with its published (rounded) count or "withheld"."""
    plt = _plt()
    labels = [FUNNEL_LABELS[m] for m in FUNNEL_LABELS]
    values = [_num(headline.get(m)) for m in FUNNEL_LABELS]
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    bars = ax.barh(labels[::-1], [0 if math.isnan(v) else v for v in values[::-1]], color="#3b6ea5")
    ax.set_xscale("symlog", linthresh=10)
    top = max([v for v in values if not math.isnan(v)], default=0)
    ax.set_xlim(0, max(top * 4, 100))   # room for the labels at the bar ends
    for bar, v in zip(bars, values[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " withheld" if math.isnan(v) else f" {v:,.0f}",
                va="center", color=WITHHELD_COLOUR if math.isnan(v) else "#222222")
    ax.set_xlabel("people (log scale)")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def _month_bars(months: list[str], series: dict[str, list[float]], ylabel: str) -> str:
    """Grouped bars per month: readable with one month or many; a withheld value is marked
    "w" at the foot of its bar's place instead of being drawn as 0."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    width = 0.8 / max(len(series), 1)
    everything = [v for ys in series.values() for v in ys]
    top = _count_axis(ax.yaxis, everything)
    for i, (name, ys) in enumerate(series.items()):
        xs = [m + (i - (len(series) - 1) / 2) * width for m in range(len(months))]
        ax.bar(xs, [0 if math.isnan(y) else y for y in ys], width, label=name,
               color=SERIES_COLOURS[i % len(SERIES_COLOURS)])
        for x, y in zip(xs, ys):
            if math.isnan(y):
                ax.text(x, top * 0.01, "w", ha="center", va="bottom", fontsize=7, color=WITHHELD_COLOUR)
    ax.set_xlim(-0.6, max(len(months), 3) - 0.4)   # a single month is a group of bars, not a wall
    ax.set_ylim(0, top)
    ax.set_xticks(range(len(months)), months, rotation=45 if len(months) > 6 else 0,
                  ha="right" if len(months) > 6 else "center")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, ncols=len(series), loc="upper left")
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


def wilson_interval(share: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of an observed share among n people (NaN when unknown)."""
    if math.isnan(share) or math.isnan(n) or n <= 0:
        return math.nan, math.nan
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _calibration_plot(points: list[dict]) -> str:
    """Observed share confirmed against mean predicted probability per bin, with the 95%
    Wilson interval of each observed share (bins with withheld counts have none)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", label="perfect calibration")
    xs = [_num(p["predicted"]) for p in points]
    ys = [_num(p["observed"]) for p in points]
    intervals = [wilson_interval(y, _num(p.get("n"))) for y, p in zip(ys, points)]
    below = [y - lo if not math.isnan(lo) else 0.0 for y, (lo, _) in zip(ys, intervals)]
    above = [hi - y if not math.isnan(hi) else 0.0 for y, (_, hi) in zip(ys, intervals)]
    ax.errorbar(xs, ys, yerr=[below, above], marker="o", color="#b5473a", capsize=2,
                label="model (95% interval)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed share confirmed")
    ax.legend(frameon=False, loc="upper left")
    return _svg(fig)


def _grouped_bars(groups: list[str], series: dict[str, list[float]], ylabel: str) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 2.8))
    width = 0.8 / max(len(series), 1)
    for i, (name, ys) in enumerate(series.items()):
        ax.bar([g + i * width for g in range(len(groups))], [0 if math.isnan(y) else y for y in ys], width, label=name)
    ax.set_xticks([g + width * (len(series) - 1) / 2 for g in range(len(groups))], groups)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return _svg(fig)


class _View:
    """Lookup of (dimension, level, metric) cells in the pilot document."""

    def __init__(self, pilot: dict):
        self.cells = {(r["dimension"], r["level"], r["metric"]): {"value": r["value"], "status": r["status"]}
                      for r in pilot["counts"] + pilot["derived"]}
        self.levels: dict[str, list[str]] = {}
        for d, lv, _ in self.cells:
            self.levels.setdefault(d, [])
            if lv not in self.levels[d]:
                self.levels[d].append(lv)

    def get(self, dimension: str, level: str, metric: str) -> dict:
        return self.cells.get((dimension, level, metric), {"value": 0, "status": "ok"})

    def row(self, dimension: str, level: str, metrics) -> dict:
        return {m: self.get(dimension, level, m) for m in metrics}


def build_report(pilot: dict) -> str:
    """The report HTML for one pilot document."""
    view = _View(pilot)
    headline = pilot["headline"]
    month_rows, trend_plot = _trend_section(view)
    calibration = [{"bin": b, "range": f"{lo:.1f}-{hi:.1f}", "n": view.get("all", "all", f"calib_n_{b}"),
                    "predicted": view.get("all", "all", f"calib_predicted_{b}"),
                    "observed": view.get("all", "all", f"calib_observed_{b}")}
                   for b, lo, hi in zip(S.CALIBRATION_BINS, (0,) + S.CALIBRATION_EDGES[:-1], S.CALIBRATION_EDGES)]
    has_model = (view.get("all", "all", "calib_n")["value"] or 0) > 0 or view.get("all", "all", "calib_n")[
        "status"] == "suppressed"
    equity, equity_plots = _equity_section(view)
    practices = _level_rows(view, "practice", ("population", "tested_share", "referred", "confirmed",
                                               "share_of_expected_found"))
    clinics = [r for r in _level_rows(view, "clinic", ("referred", "attended", "confirmed", "attended_share",
                                                       "median_days_listed_to_visit")) if r["level"] != S.NO_CLINIC]
    regions = _level_rows(view, "region", ("population", "referred", "confirmed", "share_of_expected_found",
                                           "cost_per_new_case_dkk"))
    ppv = [{"rule": r, **view.row("all", "all", (f"rule_pos_{r}", f"rule_pos_confirmed_{r}", f"ppv_{r}"))}
           for r in S.RULES]
    outcomes = [{"outcome": o, "cell": view.get("all", "all", f"outcome_{o}")}
                for o in S.OUTCOMES + ("none",)]
    return render.render_html(
        "metrics/report.html.j2",
        pilot=pilot,
        headline=headline,
        funnel=[(FUNNEL_LABELS[m], headline[m]) for m in FUNNEL_LABELS],
        funnel_plot=_funnel_plot(headline),
        outcomes=outcomes,
        month_rows=month_rows,
        trend_plot=trend_plot,
        calibration=calibration,
        calibration_plot=_calibration_plot(calibration) if has_model else None,
        equity=equity,
        equity_plots=equity_plots,
        practices=practices,
        clinics=clinics,
        regions=regions,
        ppv=ppv,
        cascade=view.row("all", "all", ("cascade_identified", "cascade_contacted", "cascade_tested", "cascade_positive",
                                        "cascade_contacted_share", "cascade_tested_share", "cascade_positive_share")),
        treatment=view.row("all", "all", ("treatment_changed", "treatment_started", "treatment_intensified",
                                          "treatment_changed_share", "ldl_change_n", "ldl_change_mean_mmol",
                                          "median_days_flag_to_listed", "median_days_listed_to_visit")),
        yardsticks=yardsticks.rows(pilot),
        yardstick_conventions=yardsticks.conventions(),
        cost=view.row("all", "all", ("referred", "attended", "cascade_tested", "cascade_contacted", "cost_dkk",
                                     "new_cases", "cost_per_confirmed_case_dkk", "cost_per_new_case_dkk", "expected_cases",
                                     "share_of_expected_found", "already_diagnosed", "confirmed")),
    )


def _level_rows(view: _View, dimension: str, metrics: tuple[str, ...]) -> list[dict]:
    """One row per level of ``dimension`` (sorted), with the given metrics' cells."""
    return [{"level": lv, **view.row(dimension, lv, metrics)} for lv in sorted(view.levels.get(dimension, []))]


def _trend_section(view: _View) -> tuple[list[dict], str | None]:
    """A row per month (by month first listed, without the not-referred bucket) and the
    trend plot (none when every value is missing or suppressed)."""
    months = sorted(lv for lv in view.levels.get("month", []) if lv != S.NOT_REFERRED_MONTH)
    month_rows = [{"level": m, **view.row("month", m, ("referred", "attended", "confirmed", "attended_share",
                                                        "median_days_listed_to_visit"))} for m in months]
    trends = {name: [_num(r[name]) for r in month_rows] for name in ("referred", "attended", "confirmed")}
    trend_plot = _month_bars(months, trends, "people (by month first listed)") if _any_value(trends) else None
    return month_rows, trend_plot


def _equity_section(view: _View) -> tuple[dict, dict]:
    """Rows and bar charts by sex and by age band."""
    equity = {}
    equity_plots = {}
    for dim in ("sex", "age_band"):
        lvls = sorted(view.levels.get(dim, []))
        equity[dim] = [{"level": lv, **view.row(dim, lv, ("population", "referred", "confirmed") + EQUITY_RATES)}
                       for lv in lvls]
        series = {
            "referred / flagged": [_num(r["referred_share"]) for r in equity[dim]],
            "attended / referred": [_num(r["attended_share"]) for r in equity[dim]],
        }
        if _any_value(series):
            equity_plots[dim] = _grouped_bars(lvls, series, "share")
    return equity, equity_plots



