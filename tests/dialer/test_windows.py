"""Call windows in the subscriber's local time: DST, far-east subscribers, holidays, fail-closed."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from ivr.dialer import windows as w
from ivr.dialer.legal import LegalHours
from ivr.dialer.policy import Stage
from ivr.dialer.windows import is_callable, next_window_start, resolve_timezone
from tests.dialer.conftest import make_rules
from tests.dialer.conftest import windows as make_windows

UTC = dt.UTC
# Window arithmetic at night (midnight ends, DST gaps at 02:00) is tested without the legal-hours
# guard, which would rightly close those hours (tests/dialer/test_legal.py tests the guard).
NO_LIMIT = LegalHours((0, 24 * 60), (0, 24 * 60))


def profile(days):
    return make_windows(days)["default"]


WEEK = profile({**{d: [(9, 20)] for d in range(5)}, 5: [(10, 18)], 6: [(10, 18)], 7: [(12, 16)]})


def utc(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> dt.datetime:
    return dt.datetime(y, m, d, hh, mm, tzinfo=UTC)


def no_holiday(day: dt.date) -> bool:
    return False


def ru_holiday(day: dt.date) -> bool:
    return w.is_public_holiday("RU", day)


class TestIsCallable:
    def test_inside_and_edges_of_a_weekday_window(self) -> None:
        monday = dt.datetime(2026, 3, 2)
        assert is_callable(monday.replace(hour=9), WEEK, False, "as_weekend")
        assert is_callable(monday.replace(hour=19, minute=59), WEEK, False, "as_weekend")
        assert not is_callable(monday.replace(hour=8, minute=59), WEEK, False, "as_weekend")
        assert not is_callable(monday.replace(hour=20), WEEK, False, "as_weekend")  # end is exclusive

    def test_end_midnight_means_until_the_end_of_the_day(self) -> None:
        late = profile({0: [(18, 24)]})
        assert is_callable(dt.datetime(2026, 3, 2, 23, 59), late, False, "as_weekday", legal=NO_LIMIT)
        assert not is_callable(dt.datetime(2026, 3, 2, 17, 59), late, False, "as_weekday")

    def test_required_hour_is_intersected_with_the_window(self) -> None:
        monday = dt.datetime(2026, 3, 2)
        assert is_callable(monday.replace(hour=19, minute=30), WEEK, False, "as_weekend", required_hour=19)
        assert not is_callable(monday.replace(hour=18, minute=59), WEEK, False, "as_weekend", required_hour=19)
        # the required hour lies outside the window: never
        assert not any(
            is_callable(monday.replace(hour=h), WEEK, False, "as_weekend", required_hour=21) for h in range(24)
        )

    def test_missing_profile_or_bad_hour_fails_closed(self) -> None:
        monday_noon = dt.datetime(2026, 3, 2, 12)
        assert not is_callable(monday_noon, None, False, "as_weekend")
        assert not is_callable(monday_noon, profile({}), False, "as_weekend")
        assert not is_callable(monday_noon, WEEK, False, "as_weekend", required_hour=25)

    def test_holiday_lookup_error_fails_closed(self) -> None:
        def broken(day: dt.date) -> bool:
            raise LookupError("no calendar")

        assert not is_callable(dt.datetime(2026, 3, 2, 12), WEEK, broken, "as_weekday")
        assert next_window_start(utc(2026, 3, 2, 9), "Europe/Moscow", WEEK, broken, "as_weekday") is None


class TestHolidays:
    def test_russian_calendar(self) -> None:
        assert w.is_public_holiday("RU", dt.date(2026, 1, 1))
        assert w.is_public_holiday("RU", dt.date(2026, 5, 9))
        assert not w.is_public_holiday("RU", dt.date(2026, 3, 2))
        with pytest.raises(LookupError):
            w.is_public_holiday("XX", dt.date(2026, 1, 1))

    def test_new_year_under_each_policy(self) -> None:
        # 1 Jan 2026 is a Thursday (weekday window 9-20); the holiday row is 12-16.
        morning = dt.datetime(2026, 1, 1, 9, 30)
        assert not is_callable(morning, WEEK, ru_holiday, "as_weekend")
        assert is_callable(morning.replace(hour=13), WEEK, ru_holiday, "as_weekend")
        assert is_callable(morning, WEEK, ru_holiday, "as_weekday")
        assert not any(is_callable(morning.replace(hour=h), WEEK, ru_holiday, "no_calls") for h in range(24))

    def test_victory_day_uses_the_holiday_row_not_saturdays(self) -> None:
        # 9 May 2026 is a Saturday (10-18), but as a holiday only 12-16 applies.
        assert not is_callable(dt.datetime(2026, 5, 9, 10, 30), WEEK, ru_holiday, "as_weekend")
        assert is_callable(dt.datetime(2026, 5, 16, 10, 30), WEEK, ru_holiday, "as_weekend")
        assert is_callable(dt.datetime(2026, 5, 9, 10, 30), WEEK, ru_holiday, "as_weekday")

    def test_as_weekend_without_a_holiday_row_falls_back_to_sunday(self) -> None:
        no_row = profile({3: [(9, 20)], 6: [(11, 13)]})
        assert not is_callable(dt.datetime(2026, 1, 1, 10), no_row, ru_holiday, "as_weekend")
        assert is_callable(dt.datetime(2026, 1, 1, 11), no_row, ru_holiday, "as_weekend")

    def test_unknown_policy_fails_closed_on_holidays(self) -> None:
        assert not is_callable(dt.datetime(2026, 1, 1, 13), WEEK, ru_holiday, "whatever")


class TestTimeZones:
    def test_kyiv_dst_change_day(self) -> None:
        # Kyiv springs forward on 29 March 2026 (UTC+2 -> UTC+3); the same UTC instant is 09:30
        # on Saturday and 10:30 on the Sunday.
        rules = make_rules(days={5: [(10, 18)], 6: [(10, 18)]})
        stage = rules.stages[0]
        assert not w.stage_window_open(rules, stage, "Europe/Kyiv", "UA", utc(2026, 3, 28, 7, 30))
        assert w.stage_window_open(rules, stage, "Europe/Kyiv", "UA", utc(2026, 3, 29, 7, 30))
        # and the next window start on the Saturday is 10:00 local = 08:00 UTC
        assert w.stage_next_window(rules, stage, "Europe/Kyiv", "UA", utc(2026, 3, 28, 7, 30)) == utc(2026, 3, 28, 8)
        # on the Sunday morning before the change, 10:00 EEST = 07:00 UTC
        assert w.stage_next_window(rules, stage, "Europe/Kyiv", "UA", utc(2026, 3, 29, 0)) == utc(2026, 3, 29, 7)

    def test_new_york_dst_and_a_window_inside_the_gap(self) -> None:
        week = profile({d: [(9, 20)] for d in range(7)})
        # 8 March 2026: 13:30 UTC is 09:30 EDT; the day before it was 08:30 EST.
        ny = ZoneInfo("America/New_York")
        assert is_callable(utc(2026, 3, 8, 13, 30).astimezone(ny), week, no_holiday, "as_weekday")
        assert not is_callable(utc(2026, 3, 7, 13, 30).astimezone(ny), week, no_holiday, "as_weekday")
        assert next_window_start(utc(2026, 3, 8, 12), ny, week, no_holiday, "as_weekday") == utc(2026, 3, 8, 13)
        # A Sunday 02:00-03:00 window does not exist on the change day: the next one is a week on.
        gap = profile({6: [(2, 3)]})
        start = next_window_start(utc(2026, 3, 7, 12), ny, gap, no_holiday, "as_weekday", legal=NO_LIMIT)
        assert start == dt.datetime(2026, 3, 15, 2, tzinfo=ny).astimezone(UTC)
        # Falling back (1 Nov 2026) the 01:00-02:00 hour happens twice; both are inside.
        night = profile({6: [(1, 2)]})
        assert is_callable(utc(2026, 11, 1, 5, 30).astimezone(ny), night, no_holiday, "as_weekday", legal=NO_LIMIT)
        assert is_callable(utc(2026, 11, 1, 6, 30).astimezone(ny), night, no_holiday, "as_weekday", legal=NO_LIMIT)
        # ... and with the guard the same night hour is never called
        assert not is_callable(utc(2026, 11, 1, 5, 30).astimezone(ny), night, no_holiday, "as_weekday")

    def test_vladivostok_subscriber_and_a_moscow_server(self) -> None:
        rules = make_rules()
        stage = rules.stages[0]
        # Monday 2 March 2026, 12:00 UTC: 15:00 in Moscow, 22:00 in Vladivostok
        noon = utc(2026, 3, 2, 12)
        assert w.stage_window_open(rules, stage, "Europe/Moscow", "RU", noon)
        assert not w.stage_window_open(rules, stage, "Asia/Vladivostok", "RU", noon)
        # Sunday 23:30 UTC is Monday 09:30 in Vladivostok and 02:30 in Moscow
        late = utc(2026, 3, 1, 23, 30)
        assert w.stage_window_open(rules, stage, "Asia/Vladivostok", "RU", late)
        assert not w.stage_window_open(rules, stage, "Europe/Moscow", "RU", late)
        # next window for Vladivostok after 22:00 local Monday: Tuesday 09:00 local = Monday 23:00 UTC
        assert w.stage_next_window(rules, stage, "Asia/Vladivostok", "RU", noon) == utc(2026, 3, 2, 23)

    def test_unknown_zone_or_country_fails_closed(self) -> None:
        rules = make_rules()
        stage = rules.stages[0]
        noon = utc(2026, 3, 2, 12)
        assert not w.stage_window_open(rules, stage, "Mars/Olympus", "RU", noon)
        assert not w.stage_window_open(rules, stage, None, "RU", noon)
        assert not w.stage_window_open(rules, stage, "Europe/Moscow", "XX", noon)
        assert w.stage_next_window(rules, stage, "Mars/Olympus", "RU", noon) is None

    def test_missing_profile_for_the_stage_fails_closed(self) -> None:
        rules = make_rules()
        stage = Stage(code="x", position=1, window_profile="night-shift")
        assert not w.stage_window_open(rules, stage, "Europe/Moscow", "RU", utc(2026, 3, 2, 12))
        assert w.stage_next_window(rules, stage, "Europe/Moscow", "RU", utc(2026, 3, 2, 12)) is None

    def test_no_window_within_the_horizon(self) -> None:
        assert next_window_start(utc(2026, 3, 2, 12), "Europe/Moscow", profile({}), no_holiday, "as_weekday") is None
        only_no_calls = profile({7: [(9, 20)]})
        assert next_window_start(utc(2026, 3, 2, 12), "Europe/Moscow", only_no_calls, no_holiday, "as_weekday") is None

    def test_resolve_timezone_order(self) -> None:
        default = "Europe/Moscow"
        assert resolve_timezone("Asia/Yekaterinburg", "+74232000000", default) == "Asia/Yekaterinburg"
        assert resolve_timezone("Not/AZone", "+74232000000", default) is None  # fail closed
        assert resolve_timezone(None, "+74232000000", default) == "Asia/Vladivostok"  # landline code 423
        assert resolve_timezone(None, "+79161234567", default) == default  # mobile: many zones
        assert resolve_timezone(None, None, "Bad/Default") is None
