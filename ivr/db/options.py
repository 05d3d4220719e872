"""Admin-editable runtime options (the `settings` table), with the seed file's defaults."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.db.models import Setting
from ivr.db.seed import default_options


@lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
    return default_options()


def get_options(session: Session) -> dict[str, Any]:
    """All options: seed defaults overlaid by what the admin stored."""
    values = dict(_defaults())
    for key, value in session.execute(select(Setting.key, Setting.value)):
        values[key] = value
    return values


def get_option(session: Session, key: str) -> Any:
    row = session.get(Setting, key)
    if row is not None:
        return row.value
    if key not in _defaults():
        raise KeyError(f"unknown option {key!r}")
    return _defaults()[key]


def set_option(session: Session, key: str, value: Any) -> None:
    if key not in _defaults():
        raise KeyError(f"unknown option {key!r}")
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
