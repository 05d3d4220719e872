"""How a report reads on a web page: localized headings, columns and values, numbers formatted for
the reader's language, a few headline figures, and the charts ready to inline.

The reports (ivr.reports) compute and name things in English for the CLI and CSV; this module
only dresses their tables for people. A column or value without a text in the UI catalogue shows
as the report names it, so a new column never breaks the page.

Charts: pygal puts its stylesheet in a <style> element inside the SVG, which the UI's
Content-Security-Policy (style-src 'self') refuses when the SVG is inlined. `split_chart` takes the
stylesheet out (served from /reports/chart-<digest>.css) and turns the one style attribute pygal
writes into a presentation attribute, so the chart keeps its colours under the strict policy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from ivr.reports.output import Report, Table, cell
from ivr.reports.promises import NO_STAGE
from ivr.web import i18n

REPORT_KEYS = ("reasons", "funnel", "promises", "money", "work")
DASH = "—"

Translate = Callable[..., str]

# Columns that only help a program (the step key beside its label): left out of the page, kept in CSV.
_HIDDEN = {("funnel", "funnel", "step")}
# Columns a phone leaves out: the label next to them says the same for a person.
_NARROW_HIDDEN = {("reasons", "reasons", "code")}
# Tables shown folded (the chart draws them).
_COLLAPSED = {("money", "series")}
# Columns whose values are codes with a text in the catalogue: (report, table, column) -> key prefix.
_VALUE_TEXT = {
    ("reasons", "reasons", "category"): "category_",
    ("reasons", "categories", "category"): "category_",
    ("money", "recovery", "group"): "rep_group_",
    ("work", "callbacks", "queue"): "queue_",
    ("funnel", "faults", "result"): "fault_",
    ("promises", "promises", "stage"): "ladder_stage_",
}


# Columns that hold money (one currency per site: the reports sum amounts as they are).
MONEY_COLUMNS = {("money", "start", "debt_at_start"), ("money", "start", "average"), ("money", "recovery", "debt"),
                 ("money", "recovery", "recovered"), ("money", "series", "total_owed"), ("money", "series", "average")}


@dataclass(frozen=True)
class TableView:
    key: str
    title: str
    headers: list[str]
    numeric: list[bool]
    narrow_hidden: list[bool]  # columns left out on a phone (a code beside its readable label)
    collapsed: bool  # shown folded: a long series the chart already draws
    rows: list[list[str]]
    total_row: bool  # the last row sums the others (shown in bold)


@dataclass(frozen=True)
class ChartView:
    key: str
    dom_id: str
    caption: str
    svg: str  # inline-safe: no script, no style element, no style attribute
    css: str  # its stylesheet, with selectors bound to dom_id


@dataclass(frozen=True)
class ReportView:
    key: str
    title: str
    facts: list[tuple[str, str]]
    tables: list[TableView]
    charts: list[ChartView]
    empty: bool  # nothing happened in the period (no chart is drawn then: it would be blank axes)


def text_or(tr: Translate, key: str, fallback: str, **params: Any) -> str:
    return tr(key, **params) if i18n.has_key(key) else fallback


# --- numbers ------------------------------------------------------------------------------------

def number(value: Any, lang: str) -> str:
    """1 234,50 in Russian, 1,234.50 in English; ints grouped; None as a dash."""
    if value is None or value == "":
        return DASH
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return cell(value)
    text = f"{value:,}" if not isinstance(value, float) else f"{value:,.2f}"
    if lang == "ru":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return text.replace("-", "\u2212", 1) if text.startswith("-") else text


def percent(value: Decimal | None, lang: str) -> str:
    return DASH if value is None else f"{number(value, lang)}\u00a0%"


def day_text(day: dt.date, lang: str) -> str:
    return day.strftime("%d.%m.%Y") if lang == "ru" else day.isoformat()


def period_text(start: dt.date, last_day: dt.date, lang: str) -> str:
    return f"{day_text(start, lang)} — {day_text(last_day, lang)}"


# --- tables -------------------------------------------------------------------------------------

def _value_text(tr: Translate, report: str, table: str, column: str, value: Any, row: Mapping[str, Any]) -> str | None:
    if value == "total":
        return tr("rep_total")
    if value == NO_STAGE and column == "stage":
        return tr("rep_no_stage")
    if report == "funnel" and table == "funnel" and column == "label":
        return text_or(tr, f"rep_step_{row.get('step')}", cell(value))
    prefix = _VALUE_TEXT.get((report, table, column))
    if prefix is None or value is None:
        return None
    return text_or(tr, f"{prefix}{value}", cell(value))


def column_header(tr: Translate, report_key: str, table_key: str, column: Any, currency: str = "") -> str:
    """A column's heading in the reader's language; money columns name their currency."""
    text = text_or(tr, f"rep_col_{report_key}_{column.key}", text_or(tr, f"rep_col_{column.key}", column.header))
    if currency and (report_key, table_key, column.key) in MONEY_COLUMNS:
        text = f"{text}, {currency}"
    return text


def table_view(report_key: str, table: Table, tr: Translate, lang: str, title_params: Mapping[str, Any],
               currency: str = "") -> TableView:
    shown = [i for i, c in enumerate(table.columns) if (report_key, table.key, c.key) not in _HIDDEN]
    headers = [column_header(tr, report_key, table.key, table.columns[i], currency) for i in shown]
    rows = []
    for row, as_dict in zip(table.rows, table.as_dicts(), strict=True):
        out = []
        for i in shown:
            column, value = table.columns[i], row[i]
            named = _value_text(tr, report_key, table.key, column.key, value, as_dict)
            if named is None:
                named = number(value, lang) if column.numeric else day_text(value, lang) if isinstance(value, dt.date) else cell(value)
            out.append(named)
        rows.append(out)
    first_values = [r[0] for r in table.rows]
    return TableView(
        key=table.key,
        title=text_or(tr, f"rep_tbl_{report_key}_{table.key}", table.title, **title_params),
        headers=headers, numeric=[table.columns[i].numeric for i in shown], rows=rows,
        narrow_hidden=[(report_key, table.key, table.columns[i].key) in _NARROW_HIDDEN for i in shown],
        collapsed=(report_key, table.key) in _COLLAPSED and len(rows) > 1,
        total_row=len(first_values) > 1 and first_values[-1] == "total",
    )


def sheet_value(value: Any, decimal_comma: bool) -> str:
    """A number or date as a spreadsheet reads it: no grouping; a decimal comma and DD.MM.YYYY
    for a Russian-locale spreadsheet (which reads "12.50" as text, or as 12 May)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return cell(value)
    if isinstance(value, int | Decimal | float):
        text = str(value) if not isinstance(value, float) else f"{value:.2f}"
        return text.replace(".", ",") if decimal_comma else text
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.strftime("%d.%m.%Y") if decimal_comma else value.isoformat()
    return cell(value)


def sheet_table(report_key: str, table: Table, tr: Translate, *, decimal_comma: bool,
                currency: str = "") -> tuple[list[str], list[list[str]]]:
    """(headings, rows) of one table for a spreadsheet: every column (the CSV is also
    data), headings and codes in the reader's language, numbers unformatted but for the
    decimal separator."""
    headers = [column_header(tr, report_key, table.key, c, currency) for c in table.columns]
    rows = []
    for row, as_dict in zip(table.rows, table.as_dicts(), strict=True):
        out = []
        for column, value in zip(table.columns, row, strict=True):
            named = _value_text(tr, report_key, table.key, column.key, value, as_dict)
            out.append(named if named is not None else sheet_value(value, decimal_comma))
        rows.append(out)
    return headers, rows


def _title_params(report: Any, tr: Translate) -> dict[str, Any]:
    if report.name != "money":
        return {}
    unit = text_or(tr, f"rep_gran_{report.granularity}_of", report.granularity)
    return {"days": report.window_days, "unit": unit}


# --- headline figures ---------------------------------------------------------------------------

def facts(report: Any, tr: Translate, lang: str, currency: str = "") -> list[tuple[str, str]]:
    """The few figures a manager reads first, per report."""
    n = lambda v: number(v, lang)  # noqa: E731
    p = lambda v: percent(v, lang)  # noqa: E731
    if report.name == "reasons":
        out = [(tr("rep_fact_answers"), n(report.total_answers))]
        if report.route:
            out.append((tr("rep_fact_listed"), n(report.listed_answers)))
        judged = [r for r in report.rows if r.deviation_pp is not None]
        if judged:
            top = max(judged, key=lambda r: abs(r.deviation_pp))
            sign = "+" if top.deviation_pp > 0 else ""
            out.append((tr("rep_fact_top_deviation"), f"{top.label}: {sign}{n(top.deviation_pp)} {tr('rep_pp')}"))
        return out
    if report.name == "funnel":
        return [(tr("rep_fact_cases_open"), n(report.cases_open)), (tr("rep_fact_attempted"), n(report.attempted)),
                (tr("rep_fact_answered"), f"{n(report.answered)} ({p(report.reach_pct)})"),
                (tr("rep_fact_right_party"), n(report.right_party))]
    if report.name == "promises":
        t = report.total
        return [(tr("rep_fact_made"), n(t.made)), (tr("rep_fact_kept"), n(t.kept)), (tr("rep_fact_broken"), n(t.broken)),
                (tr("rep_fact_kept_rate"), p(t.kept_rate_pct))]
    if report.name == "money":
        m = lambda v: f"{n(v)}\u00a0{currency}" if currency else n(v)  # noqa: E731
        return [(tr("rep_currency"), currency or DASH), (tr("rep_fact_debt_at_start"), m(report.debt_at_start)),
                (tr("rep_fact_accounts_at_start"), n(report.accounts_at_start)),
                (tr("rep_fact_recovered_reached", days=report.window_days),
                 f"{p(report.reached.rate_pct)} ({m(report.reached.recovered)})"),
                (tr("rep_fact_recovered_not", days=report.window_days),
                 f"{p(report.not_reached.rate_pct)} ({m(report.not_reached.recovered)})")]
    if report.name == "work":
        return [(tr("rep_fact_callbacks"), n(report.total.raised)), (tr("rep_fact_robot_attempts"), n(report.robot_attempts)),
                (tr("rep_fact_completed"), n(report.robot_completed)),
                (tr("rep_fact_hours_saved"), n(report.operator_hours_saved))]
    return []


# --- charts -------------------------------------------------------------------------------------

_CHART_ID = re.compile(r'\bid="(chart-[0-9a-f-]{8,})"')
_STYLE_ELEMENT = re.compile(r"<style\b[^>]*>(.*?)</style>", re.DOTALL)
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_LEGEND_ID = re.compile(r'\sid="activate-serie-\d+"')  # repeated in every chart: not unique on a page
_TEXT = re.compile(r"(<text\b[^>]*>|<title>)([^<]*)(</text>|</title>)")
_TITLE_TEXT = re.compile(r'(<text\b[^>]*class="title[^"]*"[^>]*>)[^<]*(</text>)')
# SVG properties that may also be written as attributes (the only ones pygal puts in style="")
_PRESENTATION = {"opacity", "fill", "stroke", "fill-opacity", "stroke-opacity", "display", "visibility"}


def _as_attributes(declarations: str) -> str:
    out = []
    for part in declarations.split(";"):
        name, _, value = part.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name in _PRESENTATION and re.fullmatch(r"[#\w.%-]+", value):
            out.append(f' {name}="{value}"')
    return "".join(out)


def split_chart(svg: str, dom_id: str) -> tuple[str, str]:
    """(svg without style element or style attributes, its stylesheet), with pygal's random chart
    id replaced by `dom_id` so that the same chart gives the same stylesheet every time."""
    found = _CHART_ID.search(svg)
    if found:
        svg = svg.replace(found.group(1), dom_id)
    css = "\n".join(html.unescape(block) for block in _STYLE_ELEMENT.findall(svg))
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE_ATTR.sub(lambda m: _as_attributes(m.group(1)), svg)
    svg = _LEGEND_ID.sub("", svg)
    return svg, css


def relabel(svg: str, labels: Mapping[str, str], caption: str) -> str:
    """Texts of the chart in the reader's language: every text node that is exactly a known English
    label (a series name written by ivr.reports.charts) is replaced; the chart's <title> (its accessible name) becomes `caption`, and the title
    drawn in the picture is left empty: the page shows the caption above the chart, readable on a
    phone where the scaled-down picture's text is small."""
    original_title = next((html.unescape(m.group(2)) for m in _TEXT.finditer(svg) if m.group(1) == "<title>"), None)

    def swap(m: re.Match[str]) -> str:
        text = html.unescape(m.group(2))
        new = caption if text == original_title else labels.get(text)
        return m.group(0) if new is None else f"{m.group(1)}{html.escape(new, quote=False)}{m.group(3)}"

    svg = _TEXT.sub(swap, svg)
    return _TITLE_TEXT.sub(lambda m: f"{m.group(1)}{m.group(2)}", svg)


def chart_labels(tr: Translate) -> dict[str, str]:
    """The series names ivr.reports.charts writes in English -> texts in the reader's language.
    (Axis labels that come from the report's data are localized in the data: `for_chart`.)"""
    from ivr.reports.work import RESULTS

    labels = {
        "No data for this period": tr("nothing_in_period"),
        "Norm %": tr("rep_col_norm_pct"), "Actual %": tr("rep_col_actual_pct"), "Cases": tr("rep_col_cases"),
        "Reached by the robot": tr("rep_group_reached"), "Not reached": tr("rep_group_not_reached"),
        "% of debt recovered": tr("rep_col_rate_pct"), "Average debt per account": tr("rep_col_average"),
        "Open": tr("rep_col_open"), "Claimed": tr("rep_col_claimed"),
        "Done: other": tr("rep_done", result=tr("rep_col_other_result")),
    }
    for status in ("kept", "broken", "pending", "cancelled"):
        labels[status.capitalize()] = tr(f"rep_col_{status}")
    for result in RESULTS:
        labels[f"Done: {result.replace('_', ' ')}"] = tr("rep_done", result=tr(f"rep_col_{result}"))
    return labels


def for_chart(report: Any, tr: Translate) -> Any:
    """A copy of the report whose label fields read in the reader's language, so that pygal lays
    the chart out for the texts it will show (a longer text swapped in afterwards would be cut)."""
    if report.name == "funnel":
        return replace(report, steps=[replace(s, label=text_or(tr, f"rep_step_{s.key}", s.label)) for s in report.steps])
    if report.name == "work":
        return replace(report, routes=[replace(r, queue=text_or(tr, f"queue_{r.queue}", r.queue)) for r in report.routes])
    if report.name == "promises":
        return replace(report, by_stage=[replace(r, stage=tr("rep_no_stage") if r.stage == NO_STAGE
                                                 else text_or(tr, f"ladder_stage_{r.stage}", r.stage))
                                         for r in report.by_stage])
    return report


def chart_views(report: Any, tr: Translate, lang: str) -> list[ChartView]:
    from ivr.reports.charts import charts_for

    labels = chart_labels(tr)
    params = {"days": getattr(report, "window_days", 0),
              "period": period_text(report.period.start, report.period.last_day, lang)}
    out = []
    for key, svg in charts_for(for_chart(report, tr)).items():
        dom_id = f"chart-{report.name}-{key}"
        caption = text_or(tr, f"rep_chart_{report.name}_{key}", key, **params)
        inline, css = split_chart(relabel(svg, labels, caption), dom_id)
        out.append(ChartView(key, dom_id, caption, inline, css))
    return out


def css_digest(css: str) -> str:
    return hashlib.sha256(css.encode("utf-8")).hexdigest()[:32]


# --- the whole report ---------------------------------------------------------------------------

def is_empty(report: Any) -> bool:
    if report.name == "reasons":
        return bool(report.total_answers == 0)
    if report.name == "funnel":
        return bool(report.cases_open == 0 and report.attempts == 0)
    if report.name == "promises":
        return bool(report.total.made == 0)
    if report.name == "money":
        return bool(report.cases_at_start == 0 and report.total.cases == 0 and not any(p.accounts for p in report.series))
    if report.name == "work":
        return bool(report.total.raised == 0 and report.robot_attempts == 0)
    return False


def report_view(report: Report, lang: str, *, with_charts: bool = True, currency: str = "") -> ReportView:
    tr = i18n.translator(lang)
    data: Any = report
    params = _title_params(data, tr)
    empty = is_empty(data)
    return ReportView(
        key=report.name,
        title=tr(f"rep_name_{report.name}"),
        facts=facts(data, tr, lang, currency),
        tables=[table_view(report.name, tb, tr, lang, params, currency) for tb in report.tables()],
        charts=chart_views(data, tr, lang) if with_charts and not empty else [],
        empty=empty,
    )
