"""Call windows in the SUBSCRIBER's local time, public holidays and time-zone resolution.

Everything here fails closed: an unknown time zone, a profile without window rows, an unknown
holiday calendar or any unexpected error means "not callable".

Window rows are [start, end) in local wall-clock time; end 00:00 means until midnight. On a DST
change day the wall clock decides (a 09:00-20:00 window is 09:00-20:00 local whatever the UTC
offset); a window start that does not exist that day (spring-forward gap) begins at the first
existing minute after it.

Whatever the windows say, the hours are also cut to the legal limits (ivr.dialer.legal): a call
outside them is never placed, even when an admin's window or a stage's required hour says so.
The default `legal` of these functions is the statutory default, never "no limit".
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

from ivr.dialer.legal import LegalHours
from ivr.dialer.policy import HOLIDAY_WEEKDAY, ProfileWindows, Rules, Stage, Window

log = logging.getLogger(__name__)

UTC = dt.UTC
LEGAL_DEFAULT = LegalHours()
HORIZON_DAYS = 14
SUNDAY = 6


# -- time zones ---------------------------------------------------------------------------------

@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo | None:
    """ZoneInfo for a name, None when unknown (cached: ZoneInfo lookups touch the disk)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return None


def _timezone_for_phone(e164: str, default: str) -> str:
    from ivr.phone import timezone_for_phone  # the phone module owns number metadata

    return timezone_for_phone(e164, default)


def resolve_timezone(account_tz: str | None, phone_e164: str | None, default: str) -> str | None:
    """The subscriber's zone name: the account's, else the phone number's, else the default.

    Returns None (= not callable) when the account names a zone that does not exist: guessing
    another zone could call someone at night.
    """
    if account_tz:
        return account_tz if zone(account_tz) is not None else None
    name = default
    if phone_e164:
        try:
            name = _timezone_for_phone(phone_e164, default) or default
        except Exception:  # noqa: BLE001 - any failure of the lookup falls back to the default
            log.exception("time zone lookup failed for a phone number; using %s", default)
            name = default
    return name if zone(name) is not None else None


def to_utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC datetime from an aware one, or from a naive one read from the DB (naive = UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def naive_utc(value: dt.datetime) -> dt.datetime:
    """The DB's storage form: naive UTC."""
    return to_utc(value).replace(tzinfo=None)


def local_midnight_utc(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """UTC instant of the start of a local date (a midnight lost to DST maps forward)."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=tz).astimezone(UTC)


# -- holidays -----------------------------------------------------------------------------------

@lru_cache(maxsize=512)
def _holiday_dates(country: str, year: int) -> frozenset[dt.date] | None:
    try:
        return frozenset(holidays.country_holidays(country, years=year).keys())
    except (NotImplementedError, KeyError, ValueError, AttributeError):
        log.error("no public-holiday calendar for country %r: its subscribers are not called", country)
        return None


def is_public_holiday(country: str, day: dt.date) -> bool:
    """Public holiday in `country` (cached per country and year). Raises for unknown countries."""
    dates = _holiday_dates(country.upper(), day.year)
    if dates is None:
        raise LookupError(f"no holiday calendar for {country!r}")
    return day in dates


def holiday_checker(country: str) -> Callable[[dt.date], bool]:
    return lambda day: is_public_holiday(country, day)


# -- windows ------------------------------------------------------------------------------------

def windows_for_day(
    profile_windows: ProfileWindows, weekday: int, is_holiday: bool, holiday_policy: str
) -> tuple[Window, ...]:
    """The window rows that apply to one local day."""
    if is_holiday:
        if holiday_policy == "no_calls":
            return ()
        if holiday_policy == "as_weekend":
            if HOLIDAY_WEEKDAY in profile_windows:
                return profile_windows[HOLIDAY_WEEKDAY]
            return profile_windows.get(SUNDAY, ())
        if holiday_policy != "as_weekday":
            return ()  # unknown policy: fail closed
    return profile_windows.get(weekday, ())


def _minute_ranges(windows: tuple[Window, ...], required_hour: int | None) -> list[tuple[int, int]]:
    """[start, end) minute ranges of the day, intersected with the stage's required hour."""
    ranges = []
    for w in windows:
        start, end = w.start_minutes, w.end_minutes
        if required_hour is not None:
            start, end = max(start, required_hour * 60), min(end, required_hour * 60 + 60)
        if start < end:
            ranges.append((start, end))
    return ranges


def day_ranges(
    profile_windows: ProfileWindows, day: dt.date, holiday: bool, holiday_policy: str,
    required_hour: int | None, legal: LegalHours,
) -> list[tuple[int, int]]:
    """The [start, end) minute ranges when calling is allowed on one local day: the profile's
    windows for that day, cut to the stage's required hour and to the legal limits."""
    windows = windows_for_day(profile_windows, day.weekday(), holiday, holiday_policy)
    return legal.clip(_minute_ranges(windows, required_hour), day.weekday(), holiday)


def is_callable(
    local_dt: dt.datetime,
    profile_windows: ProfileWindows | None,
    is_holiday: bool | Callable[[dt.date], bool],
    holiday_policy: str,
    required_hour: int | None = None,
    legal: LegalHours = LEGAL_DEFAULT,
) -> bool:
    """May the subscriber be called at `local_dt` (their local wall-clock time)?"""
    try:
        if not profile_windows:
            return False
        if required_hour is not None and not 0 <= required_hour <= 23:
            return False
        day = local_dt.date()
        holiday = is_holiday(day) if callable(is_holiday) else bool(is_holiday)
        minute = local_dt.hour * 60 + local_dt.minute
        ranges = day_ranges(profile_windows, day, holiday, holiday_policy, required_hour, legal)
        return any(start <= minute < end for start, end in ranges)
    except Exception:  # noqa: BLE001 - fail closed on anything unexpected
        log.exception("window check failed; not callable")
        return False


def next_window_start(
    now_utc: dt.datetime,
    tz: str | ZoneInfo,
    profile_windows: ProfileWindows | None,
    is_holiday: Callable[[dt.date], bool],
    holiday_policy: str,
    required_hour: int | None = None,
    horizon_days: int = HORIZON_DAYS,
    legal: LegalHours = LEGAL_DEFAULT,
) -> dt.datetime | None:
    """The first UTC instant at or after `now_utc` when calling is allowed, within `horizon_days`.

    Returns `now_utc` itself when a window is open now, None when no window opens in the horizon
    (or on any error).
    """
    try:
        zone_info = zone(tz) if isinstance(tz, str) else tz
        if zone_info is None or not profile_windows:
            return None
        now_utc = to_utc(now_utc)
        local_now = now_utc.astimezone(zone_info)
        if is_callable(local_now, profile_windows, is_holiday, holiday_policy, required_hour, legal):
            return now_utc
        for offset in range(horizon_days + 1):
            day = local_now.date() + dt.timedelta(days=offset)
            for start, _end in day_ranges(profile_windows, day, is_holiday(day), holiday_policy, required_hour, legal):
                local = dt.datetime.combine(day, dt.time(start // 60, start % 60), tzinfo=zone_info)
                candidate = local.astimezone(UTC)
                # Round-trip through UTC: a start inside a DST gap lands after the gap; only
                # accept it if the window is really open there.
                if candidate > now_utc and is_callable(
                    candidate.astimezone(zone_info), profile_windows, is_holiday, holiday_policy, required_hour, legal
                ):
                    return candidate
        return None
    except Exception:  # noqa: BLE001 - fail closed
        log.exception("next window computation failed")
        return None


# -- convenience over Rules ---------------------------------------------------------------------

def stage_window_open(rules: Rules, stage: Stage, tz_name: str | None, country: str, now_utc: dt.datetime) -> bool:
    """Is the stage's window open for this subscriber now? (fails closed)"""
    zone_info = zone(tz_name) if tz_name else None
    if zone_info is None:
        return False
    return is_callable(
        to_utc(now_utc).astimezone(zone_info), rules.profile(stage.window_profile),
        holiday_checker(country), rules.options.holiday_policy, stage.required_hour, rules.legal,
    )


def stage_next_window(
    rules: Rules, stage: Stage, tz_name: str | None, country: str, now_utc: dt.datetime
) -> dt.datetime | None:
    zone_info = zone(tz_name) if tz_name else None
    if zone_info is None:
        return None
    return next_window_start(
        now_utc, zone_info, rules.profile(stage.window_profile), holiday_checker(country),
        rules.options.holiday_policy, stage.required_hour, legal=rules.legal,
    )
