"""Reports for managers: reasons against norms, the funnel, promises, recovered debt and the
operator time the robot saved.

Each report is a function ``(session, period, **filters) -> <Report dataclass>``; the dataclasses
render through ivr.reports.output (text table, CSV, JSON) and ivr.reports.charts (SVG). The
definitions behind every figure are in each module's docstring.
"""

from __future__ import annotations

from ivr.reports.funnel import FunnelReport, FunnelStep, funnel_report
from ivr.reports.money import DebtPoint, MoneyReport, RecoveryRow, money_report
from ivr.reports.output import Column, Table, render_table, to_csv, to_json, to_jsonable
from ivr.reports.period import Period, PeriodError, parse_period
from ivr.reports.promises import PromiseRow, PromisesReport, promises_report
from ivr.reports.reasons import CategoryRow, ReasonRow, ReasonsReport, reasons_report
from ivr.reports.work import RouteRow, WorkReport, work_report

REPORT_NAMES = ("reasons", "funnel", "promises", "money", "work")

__all__ = [
    "REPORT_NAMES", "CategoryRow", "Column", "DebtPoint", "FunnelReport", "FunnelStep", "MoneyReport",
    "Period", "PeriodError", "PromiseRow", "PromisesReport", "ReasonRow", "ReasonsReport", "RecoveryRow",
    "RouteRow", "Table", "WorkReport", "funnel_report", "money_report", "parse_period", "promises_report",
    "reasons_report", "render_table", "to_csv", "to_json", "to_jsonable", "work_report",
]
