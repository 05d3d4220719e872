"""Which CSV column holds which field: default Russian and English header names, overridable.

Headers are compared loosely (case, 'ё'/'е', underscores, dashes, slashes and extra blanks do not
matter), so "Лицевой счёт", "лицевой счет" and "ЛИЦЕВОЙ_СЧЕТ" are the same column. Phones may
sit in one column (several numbers separated by `,` `;` or blanks, in priority order) or in
several ("Телефон 1", "Телефон 2"), taken in the order of their numbers.

A site whose billing names columns differently gives a TOML or JSON file (`--columns FILE`):

    [accounts]
    external_id = "Номер договора"
    phones = ["Моб. телефон", "Дом. телефон"]
    [payments]
    payment_id = "Документ"

A field named there uses exactly the names given (they replace the defaults for that field);
fields not named keep the defaults. Top-level keys outside a section apply to both kinds.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ivr.billing.csvread import CsvFileError

__all__ = [
    "ACCOUNT_FIELDS",
    "ACCOUNT_REQUIRED",
    "PAYMENT_FIELDS",
    "PAYMENT_REQUIRED",
    "fields_of",
    "ColumnError",
    "ColumnMap",
    "ColumnMapError",
    "Resolved",
    "normalize_header",
]

ACCOUNT_FIELDS: dict[str, tuple[str, ...]] = {
    "external_id": ("Лицевой счёт", "Лицевой счет", "Л/с", "ЛС", "Номер ЛС", "Номер договора", "Договор",
                    "account", "account_id", "external_id", "id"),
    "holder_name": ("ФИО", "Абонент", "ФИО абонента", "Владелец", "holder", "holder_name", "name"),
    "phones": ("Телефон", "Телефоны", "Тел", "Тел.", "Номер телефона", "phone", "phones", "mobile"),
    "balance": ("Сумма долга", "Долг", "Задолженность", "Сальдо", "balance", "debt", "amount_owed"),
    "currency": ("Валюта", "currency"),
    "due_date": ("Дата платежа", "Срок оплаты", "Оплатить до", "due_date", "due"),
    "block_date": ("Дата блокировки", "Дата отключения", "block_date"),
    "timezone": ("Часовой пояс", "timezone", "tz", "time_zone"),
    "language": ("Язык", "language", "lang"),
    "service_name": ("Услуга", "service", "service_name"),
    "tariff": ("Тариф", "tariff"),
    # issue 16: optional, "pay by ... to keep this month's price"
    "keep_price_until": ("Цена действует до", "Сохранить цену до", "Сохранение цены до", "keep_price_until",
                         "price_deadline", "keep_price"),
}
ACCOUNT_REQUIRED = ("external_id", "holder_name", "phones", "balance")

PAYMENT_FIELDS: dict[str, tuple[str, ...]] = {
    "payment_id": ("Номер платежа", "ID платежа", "Платёж", "Платеж", "Номер документа", "payment_id", "payment", "id"),
    "account": ("Лицевой счёт", "Лицевой счет", "Л/с", "ЛС", "Номер ЛС", "Номер договора", "Договор",
                "account", "account_id", "external_id"),
    "amount": ("Сумма", "Сумма платежа", "amount", "sum"),
    "paid_on": ("Дата платежа", "Дата оплаты", "Дата", "date", "paid_on", "payment_date"),
    "currency": ("Валюта", "currency"),
}
PAYMENT_REQUIRED = ("payment_id", "account", "amount", "paid_on")

_KINDS: dict[str, tuple[dict[str, tuple[str, ...]], tuple[str, ...]]] = {
    "accounts": (ACCOUNT_FIELDS, ACCOUNT_REQUIRED),
    "payments": (PAYMENT_FIELDS, PAYMENT_REQUIRED),
}
# Fields whose every matching column is used ("Телефон 1", "Телефон 2" ...), left to right.
_MULTI = {"phones"}
_SEPARATORS = re.compile(r"[\s_\-./\\]+")
_NUMBERED = re.compile(r"^(.*?)\s*(?:№\s*)?(\d{1,2})$")


def fields_of(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every field of `kind` in display order, the required ones)."""
    spec, required = _KINDS[kind]
    return tuple(spec), required


class ColumnMapError(ValueError):
    """The --columns file is unreadable or names unknown fields."""


class ColumnError(CsvFileError):
    """The header lacks a required column."""


def normalize_header(name: str) -> str:
    text = name.strip().lstrip("\ufeff").strip("\"' :*").casefold().replace("ё", "е")
    return _SEPARATORS.sub(" ", text).strip()


@dataclass(frozen=True)
class Resolved:
    """Column positions of one file's header."""

    kind: str
    width: int
    index: dict[str, int]
    phones: tuple[int, ...] = ()
    names: dict[str, str] = field(default_factory=dict)  # field -> header as written (for messages)

    def get(self, name: str) -> int | None:
        return self.index.get(name)


@dataclass
class ColumnMap:
    """Header names per field, per kind of file ("accounts", "payments")."""

    fields: dict[str, dict[str, tuple[str, ...]]]

    @classmethod
    def default(cls) -> ColumnMap:
        return cls({kind: dict(spec) for kind, (spec, _req) in _KINDS.items()})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ColumnMap:
        cmap = cls.default()
        shared = {k: v for k, v in data.items() if k not in _KINDS}
        for kind in _KINDS:
            section = data.get(kind, {})
            if not isinstance(section, Mapping):
                raise ColumnMapError(f"[{kind}] must be a table of field = column name(s)")
            for scope, entries in (("shared", shared), (kind, section)):
                for name, value in entries.items():
                    known = cmap.fields[kind]
                    if name not in known:
                        if scope == "shared" and any(name in cmap.fields[k] for k in _KINDS):
                            continue  # a shared key meant for the other kind
                        raise ColumnMapError(
                            f"unknown field {name!r} for {kind}; known fields: {', '.join(known)}"
                        )
                    known[name] = _aliases(name, value)
        return cmap

    @classmethod
    def from_file(cls, path: Path | str) -> ColumnMap:
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ColumnMapError(f"cannot read column map {path}: {exc.strerror or exc}") from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ColumnMapError(f"{path}: column map must be UTF-8") from None
        try:
            if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
                data = json.loads(text)
            else:
                data = tomllib.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ColumnMapError(f"{path}: {exc}") from None
        if not isinstance(data, dict):
            raise ColumnMapError(f"{path}: expected a table of field = column name(s)")
        return cls.from_mapping(data)

    def resolve(self, kind: str, header: list[str]) -> Resolved:
        """Find each field's column in `header`; ColumnError names the missing required ones."""
        found = self.match(kind, header)
        spec = self.fields[kind]
        missing = [n for n in _KINDS[kind][1] if n not in found.index]
        if missing:
            wanted_txt = "; ".join(f"{n} (e.g. {' / '.join(repr(a) for a in spec[n][:3])})" for n in missing)
            raise ColumnError(
                f"missing required column(s) for {kind}: {wanted_txt}. Header read: "
                f"{' | '.join(header)}. Use --columns FILE to name your billing's columns."
            )
        return found

    def match(self, kind: str, header: list[str]) -> Resolved:
        """The columns of `header` this map finds, required ones missing or not (the import
        wizard shows what was found and lets the admin pick the rest)."""
        spec = self.fields[kind]
        normalized = [normalize_header(h) for h in header]
        used: set[int] = set()
        index: dict[str, int] = {}
        names: dict[str, str] = {}
        phones: list[int] = []
        for name, aliases in spec.items():
            wanted = [normalize_header(a) for a in aliases]
            if name in _MULTI:
                # priority: the order of the names given, then the number in the header
                # ("Телефон 1" before "Телефон 2"), then left to right
                ranked = []
                for pos, col in enumerate(normalized):
                    if pos in used:
                        continue
                    if col in wanted:
                        ranked.append((wanted.index(col), 0, pos))
                        continue
                    m = _NUMBERED.match(col)
                    if m and m.group(1) in wanted:
                        ranked.append((wanted.index(m.group(1)), int(m.group(2)), pos))
                phones = [pos for _rank, _num, pos in sorted(ranked)]
                used.update(phones)
                if phones:
                    index[name] = phones[0]
                    names[name] = header[phones[0]]
                continue
            for alias in wanted:
                at = next((i for i, col in enumerate(normalized) if col == alias and i not in used), None)
                if at is not None:
                    index[name] = at
                    names[name] = header[at]
                    used.add(at)
                    break
        return Resolved(kind=kind, width=len(header), index=index, phones=tuple(phones), names=names)


def _aliases(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    raise ColumnMapError(f"field {name!r}: expected a column name or a list of names, got {value!r}")
