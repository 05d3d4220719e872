"""Finding a subscriber: by account number (external id), by a part of the holder's name (any
case, ё = е) or by a phone number in any format or a fragment of one.

No schema change to `accounts`: names are folded in SQL (`lower` over a translation of the
Cyrillic capitals, ё -> е), phones are matched by LIKE on the stored E.164 digits, and every
query is bounded by LIMIT (one row more than a page tells whether a next page exists, so no
COUNT over a million rows is needed)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from ivr.db.models import Account, PhoneNumber
from ivr.logsetup import mask_phone

log = logging.getLogger(__name__)

PAGE_SIZE = 20
MIN_PHONE_DIGITS = 3
FULL_NUMBER_DIGITS = 11  # country code + national number (E.164 numbers have up to 15)
MAX_QUERY = 100
_UPPER = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯІЇЄҐ"
_LOWER = "абвгдеежзийклмнопрстуфхцчшщъыьэюяіїєґ"
_PHONE_CHARS = re.compile(r"^[\d\s()+\-.]+$")
_SQLITE_FOLD = "ivr_fold"


def fold(text: str) -> str:
    """The form names are compared in: lower case, ё written as е."""
    return text.lower().replace("ё", "е")


def phone_digits(query: str) -> str | None:
    """The digits to look for when `query` looks like a phone number or a fragment of one
    ("+7 916 123-45-67", "8 (916) 123 45 67", "4567"); None when it does not. A Russian trunk
    prefix 8 before ten digits is the country code 7 in E.164."""
    if not _PHONE_CHARS.match(query):
        return None
    digits = re.sub(r"\D", "", query)
    if len(digits) < MIN_PHONE_DIGITS:
        return None
    if len(digits) == 11 and digits.startswith("8") and not query.strip().startswith("+"):
        digits = "7" + digits[1:]
    return digits


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _folded_name(session: Session) -> ColumnElement[str]:
    """holder_name folded in SQL. SQLite's lower() only knows ASCII, so on SQLite the same Python
    `fold` is registered on the connection; elsewhere (PostgreSQL) the Cyrillic capitals are
    translated explicitly, which does not depend on the database's locale."""
    if session.get_bind().dialect.name == "sqlite":
        raw = session.connection().connection.driver_connection
        assert raw is not None
        raw.create_function(_SQLITE_FOLD, 1, lambda v: fold(v) if isinstance(v, str) else v, deterministic=True)
        return getattr(func, _SQLITE_FOLD)(Account.holder_name)  # type: ignore[no-any-return]
    return func.lower(func.translate(Account.holder_name, _UPPER, _LOWER))


@dataclass(frozen=True)
class Hit:
    id: int
    external_id: str
    holder_name: str
    balance: Decimal
    currency: str
    phones: list[str]  # masked


@dataclass(frozen=True)
class SearchPage:
    query: str
    page: int
    hits: list[Hit]
    has_next: bool


def search_conditions(session: Session, query: str) -> list[ColumnElement[bool]]:
    """What a row must match (any of): account number exactly or as a prefix, a name part, a
    phone fragment. Empty for an empty query."""
    query = query.strip()[:MAX_QUERY]
    if not query:
        return []
    conditions: list[ColumnElement[bool]] = [
        Account.external_id == query,
        Account.external_id.like(_like_escape(query) + "%", escape="\\"),
    ]
    if any(ch.isalpha() for ch in query):
        conditions.append(_folded_name(session).like("%" + _like_escape(fold(query)) + "%", escape="\\"))
    digits = phone_digits(query)
    if digits:
        # a whole international number is an indexed equality; a fragment needs the LIKE scan
        match = (PhoneNumber.number == "+" + digits) if len(digits) >= FULL_NUMBER_DIGITS \
            else PhoneNumber.number.like("%" + digits + "%")
        conditions.append(Account.id.in_(select(PhoneNumber.account_id).where(match)))
    return conditions


def search_accounts(session: Session, query: str, page: int = 1, page_size: int = PAGE_SIZE) -> SearchPage:
    page = max(1, page)
    conditions = search_conditions(session, query)
    if not conditions:
        return SearchPage(query.strip(), page, [], False)
    # An exact account number is the answer by itself, found by the unique index without the
    # scan the name and fragment conditions need.
    exact = session.scalar(select(Account).where(Account.external_id == query.strip()))
    if exact is not None:
        rows = [exact] if page == 1 else []
    else:
        rows = list(session.scalars(
            select(Account).where(or_(*conditions)).order_by(Account.id)
            .offset((page - 1) * page_size).limit(page_size + 1)
        ))
    has_next = len(rows) > page_size
    rows = rows[:page_size]
    phones: dict[int, list[str]] = {r.id: [] for r in rows}
    if rows:
        for account_id, number in session.execute(
            select(PhoneNumber.account_id, PhoneNumber.number)
            .where(PhoneNumber.account_id.in_(list(phones))).order_by(PhoneNumber.priority, PhoneNumber.id)
        ):
            phones[account_id].append(mask_phone(number))
    hits = [Hit(r.id, r.external_id, r.holder_name, r.balance, r.currency, phones[r.id]) for r in rows]
    return SearchPage(query.strip(), page, hits, has_next)

