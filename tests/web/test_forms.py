"""Pure validation of the admin's forms (no HTTP, no database)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ivr.web import forms


def test_parse_day_windows() -> None:
    ranges, problems = forms.parse_day_windows(" 13:00-24:00 ;08:00 – 12:30 ", 3)
    assert problems == []
    assert ranges == [(dt.time(8), dt.time(12, 30)), (dt.time(13), dt.time(0))]
    assert forms.format_day_windows(ranges) == "08:00-12:30, 13:00-24:00"
    assert forms.parse_day_windows("", 0) == ([], [])


@pytest.mark.parametrize(("raw", "key"), [
    ("9-", "err_window_format"), ("09:00", "err_window_format"), ("24:30-25:00", "err_window_format"),
    ("9.5-20", "err_window_format"),
    ("10:00-10:00", "err_window_order"), ("12:00-11:00", "err_window_order"),
    ("09:00-12:00, 11:59-13:00", "err_window_overlap"),
])
def test_parse_day_windows_problems(raw: str, key: str) -> None:
    _ranges, problems = forms.parse_day_windows(raw, 1)
    assert [p.key for p in problems] == [key]
    assert problems[0].field == "day1"


@pytest.mark.parametrize("raw", ["9-13", "9:00-13:00", "09:00-13:00", "9 - 13:00"])
def test_parse_day_windows_accepts_short_hours(raw: str) -> None:
    # issue 14: admins type "9-13" as they say it
    assert forms.parse_day_windows(raw, 2) == ([(dt.time(9), dt.time(13))], [])


def test_parse_windows_all_days() -> None:
    parsed, problems = forms.parse_windows({0: "09:00-20:00", 7: "10:00-18:00"})
    assert problems == [] and parsed[0] and parsed[7] and parsed[3] == []


REASON = {"code": "x_reason", "key": "5", "label_ru": "причина", "category": "controllable", "norm_pct": "2,5",
          "active": "on", "actionable": "on", "route": "billing"}


def test_parse_reason_ok() -> None:
    data = forms.parse_reason(REASON, languages=("ru", "en"), required_language="ru", other_codes={"forgot"},
                              other_active_keys={"1"})
    assert (data.code, data.key, data.norm_pct, data.route, data.labels) == ("x_reason", "5", Decimal("2.5"),
                                                                             "billing", {"ru": "причина"})


def test_parse_reason_collects_all_problems() -> None:
    bad = {**REASON, "code": "X", "key": "1", "label_ru": "", "norm_pct": "1.234", "route": "Bad Queue"}
    with pytest.raises(forms.FormProblems) as err:
        forms.parse_reason(bad, languages=("ru",), required_language="ru", other_codes=set(), other_active_keys={"1"})
    keys = {p.key for p in err.value.problems}
    assert keys == {"err_code", "err_reason_key_taken", "err_label_required", "err_norm", "err_queue_name"}


def test_parse_stage_and_limit() -> None:
    form = {"code": "s1", "position": "1", "name": "S", "anchor": "block", "start_day": "-3", "prompt": "debt_final",
            "window_profile": "default", "max_attempts": "2", "retry_minutes": "60", "on_end": "stop", "active": "on"}
    stage = forms.parse_stage(form, other_codes=set(), other_active_positions=set(), profiles={"default"},
                              prompt_names=["debt_final"], on_end_values=("next", "stop"))
    assert (stage.start_day, stage.required_hour, stage.on_enter, stage.active) == (-3, None, None, True)
    assert forms.parse_limit({"period": "week", "counts": "answered", "max_calls": "2"},
                             periods=("day", "week"), counts=("attempts", "answered")) == ("week", "answered", 2)
    with pytest.raises(forms.FormProblems):
        forms.parse_limit({"period": "week", "counts": "answered", "max_calls": "x"}, periods=("week",),
                          counts=("answered",))
