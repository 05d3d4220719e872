"""Charts of the reports as SVG strings (pygal), ready to embed in a web page or save to a file.

The SVG has no XML declaration and no script at all (pygal's tooltip JavaScript and its inline
configuration are left out), so it can be inlined in HTML as it is, under a strict
Content-Security-Policy and without internet.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pygal
from pygal.style import Style

from ivr.reports.funnel import FunnelReport
from ivr.reports.money import MoneyReport
from ivr.reports.output import Report
from ivr.reports.promises import NO_STAGE, PromisesReport
from ivr.reports.reasons import ReasonsReport
from ivr.reports.work import RESULTS, WorkReport

log = logging.getLogger(__name__)

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#bab0ac")
# kept, broken, pending, cancelled: green / red / amber / grey read at a glance
PROMISE_COLORS = ("#59a14f", "#e15759", "#edc948", "#bab0ac")


def _style(colors: tuple[str, ...] = PALETTE) -> Style:
    return Style(
        background="white", plot_background="white", foreground="#333", foreground_strong="#111",
        foreground_subtle="#999", font_family="DejaVu Sans, Arial, sans-serif", value_font_size=12,
        colors=colors,
    )


def _config(**extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "style": _style(), "js": [], "disable_xml_declaration": True, "width": 900, "height": 480,
        "legend_at_bottom": True, "print_values": True, "print_zeroes": False, "x_label_rotation": 0, "truncate_label": -1,
        "truncate_legend": -1, "no_data_text": "No data for this period",
    }
    options.update(extra)
    return options


# pygal always inlines a <script> with its tooltip configuration; without its JavaScript it does
# nothing, and an inline script is refused by a strict Content-Security-Policy. Its text is
# XML-escaped by pygal's etree writer, so it cannot contain a literal "</script>".
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)


def _render(chart: Any) -> str:
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def reasons_chart(report: ReasonsReport) -> str:
    """Grouped bars per reason: the norm % next to the actual %."""
    chart = pygal.Bar(**_config(title=f"Reasons: norm vs actual, % ({report.period.label()})", x_label_rotation=30))
    chart.x_labels = [r.label for r in report.rows]
    chart.add("Norm %", [_num(r.norm_pct) for r in report.rows])
    chart.add("Actual %", [_num(r.actual_pct) for r in report.rows])
    return _render(chart)


def funnel_chart(report: FunnelReport) -> str:
    """Horizontal bars from cases open down to the right-party outcomes (the top step on top)."""
    steps = [s for s in report.steps if s.key in ("open", "attempted", "answered", "right_party")]
    steps += [s for s in report.steps if s.parent == "right_party" and s.cases]
    chart = pygal.HorizontalBar(**_config(title=f"Funnel, cases ({report.period.label()})"))
    # pygal draws the first label at the bottom of a horizontal chart: reverse for a top-down funnel
    steps = list(reversed(steps))
    chart.x_labels = [s.label for s in steps]
    chart.add("Cases", [s.cases for s in steps])
    return _render(chart)


def promises_chart(report: PromisesReport) -> str:
    """Stacked bars per stage: kept, broken, pending, cancelled."""
    chart = pygal.StackedBar(**_config(title=f"Promises by stage ({report.period.label()})",
                                         style=_style(PROMISE_COLORS)))
    chart.x_labels = [r.stage or NO_STAGE for r in report.by_stage]
    for status in ("kept", "broken", "pending", "cancelled"):
        chart.add(status.capitalize(), [getattr(r, status) for r in report.by_stage])
    return _render(chart)


def money_recovered_chart(report: MoneyReport) -> str:
    """Bars: % of debt recovered within N days, reached by the robot vs not (amounts on hover)."""
    chart = pygal.Bar(**_config(title=f"Recovered within {report.window_days} days, % of debt ({report.period.label()})"))
    chart.x_labels = ["% of debt recovered"]
    for label, row in (("Reached by the robot", report.reached), ("Not reached", report.not_reached)):
        chart.add(label, [{"value": _num(row.rate_pct), "label": f"{row.recovered} of {row.debt}, {row.cases} cases"}])
    return _render(chart)


def money_debt_chart(report: MoneyReport) -> str:
    """Line: average debt per owing account, day by day (or week by week)."""
    chart = pygal.Line(**_config(title=f"Average debt per account ({report.period.label()})", x_label_rotation=45,
                                 show_minor_x_labels=False, print_values=False))
    chart.x_labels = [p.day.isoformat() for p in report.series]
    step = max(1, len(report.series) // 12)
    chart.x_labels_major = chart.x_labels[::step]
    chart.add("Average debt per account", [_num(p.average) for p in report.series])
    return _render(chart)


def work_chart(report: WorkReport) -> str:
    """Stacked bars per route: callbacks still open, claimed, and done by result."""
    chart = pygal.StackedBar(**_config(title=f"Callbacks by route ({report.period.label()})"))
    chart.x_labels = [r.queue for r in report.routes]
    chart.add("Open", [r.open for r in report.routes])
    chart.add("Claimed", [r.claimed for r in report.routes])
    for result in RESULTS:
        chart.add(f"Done: {result.replace('_', ' ')}", [getattr(r, result) for r in report.routes])
    chart.add("Done: other", [r.other_result for r in report.routes])
    return _render(chart)


_CHARTS: dict[type, list[tuple[str, Callable[[Any], str]]]] = {
    ReasonsReport: [("reasons", reasons_chart)],
    FunnelReport: [("funnel", funnel_chart)],
    PromisesReport: [("promises", promises_chart)],
    MoneyReport: [("recovered", money_recovered_chart), ("debt", money_debt_chart)],
    WorkReport: [("work", work_chart)],
}


def charts_for(report: Report) -> dict[str, str]:
    """Every chart of a report by name, the main chart first."""
    makers = _CHARTS.get(type(report))
    if makers is None:
        raise TypeError(f"no chart for {type(report).__name__}")
    return {name: make(report) for name, make in makers}


def save_chart(svg: str, path: str | Path) -> Path:
    """Write an SVG string to `path` (parent folders created), UTF-8."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(svg, encoding="utf-8")
    log.info("chart written to %s", target)
    return target
