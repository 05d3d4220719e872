"""A small, realistic, deterministic billing export for the demo and the tests.

`write_sample(directory, today)` writes accounts.csv (~200 subscribers of a security company,
Windows-1251, ';', decimal commas, DD.MM.YYYY, phones in the forms people type, a few
deliberately broken rows) and payments.csv (some full, some partial payments, one duplicate id,
one unknown account). Dates are relative to `today`, so the demo can write a fresh copy that
matches its own clock; the copies committed beside this module use SAMPLE_TODAY
(scripts/make_sample.py regenerates them, tests check they are in sync).

Phone numbers are landlines of several Russian cities (so the dialer can derive several time
zones) whose local part starts with 0: Russian numbering assigns no subscriber such a number,
so the sample can never ring a real person.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from dataclasses import dataclass
from pathlib import Path

from ivr import csvsafe

__all__ = ["SAMPLE_DIR", "SAMPLE_TODAY", "BROKEN_ACCOUNT_LINES", "write_sample", "sample_texts"]

SAMPLE_DIR = Path(__file__).resolve().parent
SAMPLE_TODAY = dt.date(2026, 11, 16)
ACCOUNTS = 200
SEED = 20261116

_MALE_SURNAMES = (
    "Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов",
    "Новиков", "Фёдоров", "Морозов", "Волков", "Алексеев", "Лебедев", "Семёнов", "Егоров",
    "Павлов", "Козлов", "Степанов", "Николаев", "Орлов", "Андреев", "Макаров", "Никитин",
    "Захаров", "Зайцев", "Соловьёв", "Борисов", "Яковлев", "Григорьев", "Романов", "Воробьёв",
    "Сергеев", "Кузьмин", "Фролов", "Александров", "Дмитриев", "Королёв", "Гусев", "Киселёв",
)
_MALE_NAMES = (
    "Александр", "Сергей", "Дмитрий", "Андрей", "Алексей", "Максим", "Евгений", "Иван",
    "Михаил", "Артём", "Николай", "Владимир", "Олег", "Павел", "Юрий", "Виктор",
)
_FEMALE_NAMES = (
    "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Анна", "Мария",
    "Екатерина", "Юлия", "Марина", "Галина", "Людмила", "Оксана",
)
_FATHERS = (
    ("Александрович", "Александровна"), ("Сергеевич", "Сергеевна"), ("Дмитриевич", "Дмитриевна"),
    ("Андреевич", "Андреевна"), ("Алексеевич", "Алексеевна"), ("Иванович", "Ивановна"),
    ("Михайлович", "Михайловна"), ("Николаевич", "Николаевна"), ("Владимирович", "Владимировна"),
    ("Петрович", "Петровна"), ("Викторович", "Викторовна"), ("Юрьевич", "Юрьевна"),
)
_COMPANIES = (
    "ООО «Ромашка»", "ООО «Северный ветер»", "ИП Сидоров А. В.", "ООО «Техносклад»",
    "ИП Белова Н. С.", "ООО «Аптека на Ленина»", "ООО «Автосервис Мотор»",
)
_SERVICES = (
    ("Охрана квартиры", ("Эконом", "Базовый", "Стандарт")),
    ("Пультовая охрана", ("Базовый", "Стандарт", "Премиум")),
    ("Охрана дома", ("Стандарт", "Премиум")),
    ("Видеонаблюдение", ("Облако 7 дней", "Облако 30 дней")),
    ("Тревожная кнопка", ("Базовый",)),
)
_BUSINESS_SERVICES = (("Охрана офиса", ("Бизнес", "Бизнес+")), ("Охрана магазина", ("Бизнес",)))
# (area code, the zone the dialer derives for it)
_CITIES = (
    ("495", "Europe/Moscow"), ("499", "Europe/Moscow"), ("812", "Europe/Moscow"),
    ("843", "Europe/Moscow"), ("846", "Europe/Samara"), ("343", "Asia/Yekaterinburg"),
    ("383", "Asia/Novosibirsk"), ("391", "Asia/Krasnoyarsk"), ("423", "Asia/Vladivostok"),
)
_FEES = (450, 590, 690, 790, 890, 990, 1200, 1450, 1800, 2350, 2900, 3500)

HEADER = [
    "Лицевой счёт", "ФИО", "Телефон", "Сумма долга", "Валюта", "Дата платежа",
    "Дата блокировки", "Часовой пояс", "Язык", "Услуга", "Тариф",
]
PAYMENT_HEADER = ["Номер платежа", "Лицевой счёт", "Сумма", "Дата платежа"]

# Line numbers (1 = header) of the rows that are broken on purpose, with the reason the
# importer must give; the tests and the demo's narration rely on them.
BROKEN_ACCOUNT_LINES = {
    23: "bad phone '12345' (too short)",
    47: "missing id",
    71: "bad amount '1 8OO,00' (not an amount)",
    95: "bad date '31.02.2026' (no such date)",
    119: "bad currency 'ЮАНИ' (unknown currency)",
    143: "unknown time zone 'Europe/Mosсow' (not a zone name such as Europe/Moscow, МСК+4 or UTC+7)",
    167: "duplicate id",
    191: "wrong column count: expected 11, got 9",
}
# A kept row whose second phone is bad (reported as a warning, the first phone is stored).
WARNING_LINE = 31


@dataclass
class _Account:
    external_id: str
    balance: float
    due: dt.date


def _money(value: float) -> str:
    """1800.5 -> '1 800,50' as Russian billing prints it."""
    whole, frac = f"{value:.2f}".split(".")
    sign = "-" if whole.startswith("-") else ""
    digits = whole.lstrip("-")
    groups: list[str] = []
    while digits:
        groups.insert(0, digits[-3:])
        digits = digits[:-3]
    return f"{sign}{' '.join(groups)},{frac}"


def _phone(rnd: random.Random, city: str) -> str:
    local = "0" + "".join(rnd.choice("0123456789") for _ in range(6))
    a, b, c = local[:3], local[3:5], local[5:]
    form = rnd.randrange(6)
    if form == 0:
        return f"8 ({city}) {a}-{b}-{c}"
    if form == 1:
        return f"+7 {city} {local}"
    if form == 2:
        return f"7{city}{local}"
    if form == 3:
        return f"8{city}{local}"
    if form == 4:
        return f"({city}) {a}-{b}-{c}"
    return f"+7 ({city}) {a} {b} {c}"


def _person(rnd: random.Random) -> str:
    if rnd.random() < 0.04:
        return rnd.choice(_COMPANIES)
    surname = rnd.choice(_MALE_SURNAMES)
    father = rnd.choice(_FATHERS)
    if rnd.random() < 0.5:
        return f"{surname} {rnd.choice(_MALE_NAMES)} {father[0]}"
    return f"{surname}а {rnd.choice(_FEMALE_NAMES)} {father[1]}"


def _account_rows(rnd: random.Random, today: dt.date) -> tuple[list[list[str]], list[_Account]]:
    rows: list[list[str]] = []
    accounts: list[_Account] = []
    for i in range(ACCOUNTS):
        external_id = f"{770100 + i * 7}"
        holder = _person(rnd)
        business = holder.startswith(("ООО", "ИП"))
        service, tariffs = rnd.choice(_BUSINESS_SERVICES if business else _SERVICES)
        city, zone = rnd.choice(_CITIES)
        phones = [_phone(rnd, city)]
        if rnd.random() < 0.3:
            phones.append(_phone(rnd, rnd.choice(_CITIES)[0]))
        phone_text = rnd.choice((", ", "; ", ",")).join(phones)
        roll = rnd.random()
        fee = rnd.choice(_FEES) * (3 if business else 1)
        if roll < 0.08:
            balance = 0.0  # paid up
        elif roll < 0.11:
            balance = -float(rnd.choice((150, 300, 590)))  # overpaid: a credit
        elif roll < 0.25:
            balance = fee * 2 + rnd.choice((0, 0, 0.5, 0.25))  # two months
        else:
            balance = float(fee) + rnd.choice((0, 0, 0, 0.5))
        due = today - dt.timedelta(days=rnd.randint(3, 40))
        block = due + dt.timedelta(days=rnd.choice((20, 21, 25)))
        currency = rnd.choice(("RUB", "RUB", "RUB", "", "руб."))
        tz_text = ""
        r = rnd.random()
        if r < 0.1:
            tz_text = zone
        elif r < 0.14 and zone == "Asia/Novosibirsk":
            tz_text = "МСК+4"
        language = rnd.choice(("", "", "", "", "ru", "ru")) if rnd.random() < 0.95 else rnd.choice(("uk", "en"))
        rows.append([
            external_id, holder, phone_text, _money(balance), currency, f"{due:%d.%m.%Y}",
            f"{block:%d.%m.%Y}", tz_text, language, service, rnd.choice(tariffs),
        ])
        accounts.append(_Account(external_id, balance, due))
    return rows, accounts


def _break_rows(rows: list[list[str]]) -> None:
    """Spoil the rows at BROKEN_ACCOUNT_LINES (line n is rows[n - 2]) and WARNING_LINE."""
    def at(line: int) -> list[str]:
        return rows[line - 2]

    at(23)[2] = "12345"
    at(47)[0] = ""
    at(71)[3] = "1 8OO,00"
    at(95)[5] = "31.02.2026"
    at(119)[4] = "ЮАНИ"
    at(143)[7] = "Europe/Mosсow"  # a Cyrillic 'с' in Moscow, as copy-paste produces
    at(167)[0] = at(166)[0]
    del at(191)[9:]
    at(WARNING_LINE)[2] = at(WARNING_LINE)[2].split(",")[0].split(";")[0] + "; 8 (495) 12"


def _payment_rows(rnd: random.Random, accounts: list[_Account], today: dt.date, broken_ids: set[str]) -> list[list[str]]:
    debtors = [a for a in accounts if a.balance > 0 and a.external_id not in broken_ids]
    chosen = rnd.sample(debtors, 40)
    rows = []
    for n, acc in enumerate(chosen, start=1):
        paid = acc.balance if n % 3 else round(acc.balance / 2, 2)  # every third pays half
        day = min(today, acc.due + dt.timedelta(days=rnd.randint(1, 10)))
        rows.append([f"PAY-{today:%Y%m}-{n:04d}", acc.external_id, _money(paid), f"{day:%d.%m.%Y}"])
    rows.append(list(rows[4]))  # the bank sent one payment twice: a duplicate id
    rows.append([f"PAY-{today:%Y%m}-9999", "999999", _money(500), f"{today:%d.%m.%Y}"])  # unknown account
    return rows


def _csv(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csvsafe.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("cp1251")


def sample_texts(today: dt.date = SAMPLE_TODAY) -> tuple[bytes, bytes]:
    """The bytes of accounts.csv and payments.csv for `today`."""
    rnd = random.Random(SEED)
    rows, accounts = _account_rows(rnd, today)
    broken_ids = {rows[line - 2][0] for line in BROKEN_ACCOUNT_LINES}
    _break_rows(rows)
    payments = _payment_rows(rnd, accounts, today, broken_ids)
    return _csv(HEADER, rows), _csv(PAYMENT_HEADER, payments)


def write_sample(directory: Path, today: dt.date = SAMPLE_TODAY) -> tuple[Path, Path]:
    """Write accounts.csv and payments.csv into `directory`; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    accounts_bytes, payments_bytes = sample_texts(today)
    accounts, payments = directory / "accounts.csv", directory / "payments.csv"
    accounts.write_bytes(accounts_bytes)
    payments.write_bytes(payments_bytes)
    return accounts, payments
