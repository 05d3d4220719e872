"""The import wizard's preview (ivr.billing.wizard) and the importer with the admin's choices:
the preview reads as the import does, stores nothing, and the confirmed import (in-process or
with the parser process) uses exactly the encoding, delimiter and columns chosen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ivr.billing import wizard
from ivr.billing.csvread import CsvFileError, open_csv
from ivr.billing.importer import import_accounts
from ivr.billing.wizard import (
    FixedColumns,
    build_resolved,
    open_chosen,
    original_lines,
    preview_file,
    suggest_mapping,
)
from ivr.config import Settings
from ivr.db.models import Account, ImportRun

from .conftest import NOW, TODAY

# more commas inside the names than semicolons between them: the sniffer picks ","
WRONG = """Л/с;ФИО, полностью;Телефон, моб.;Долг, руб., с НДС
W-1;Иванов Иван;+7 916 111-22-33;1 800,50
W-2;Петрова Анна;+7 916 222-33-44;много
W-1;Дубль;+7 916 333-44-55;700
W-4;Сидоров Олег;+7 916 444-55-66;700
"""
CHOICE = {"external_id": ["Л/с"], "holder_name": ["ФИО, полностью"], "phones": ["Телефон, моб."],
          "balance": ["Долг, руб., с НДС"]}


def test_overrides_of_encoding_and_delimiter(write_file: Callable[..., Path]) -> None:
    path = write_file("w.csv", WRONG)
    sniffed = open_csv(path)
    assert sniffed.delimiter == "," and sniffed.encoding == "cp1251"
    sniffed.close()
    chosen = open_csv(path, delimiter=";")
    assert chosen.header == ["Л/с", "ФИО, полностью", "Телефон, моб.", "Долг, руб., с НДС"]
    assert chosen.sha256 == open_csv(path).sha256
    chosen.close()
    # the admin's (wrong) encoding is used as is, and said to be wrong
    with pytest.raises(CsvFileError, match="cannot be read as UTF-8"):
        open_chosen(path, "utf-8", ";")
    with pytest.raises(ValueError):
        open_csv(path, delimiter="x")


def test_preview_reports_what_the_import_would_do(write_file: Callable[..., Path], settings: Settings) -> None:
    path = write_file("w.csv", WRONG)
    wrong = preview_file(path, "accounts", settings=settings, today=TODAY)
    assert wrong.delimiter == "," and wrong.delimiter_suspect and not wrong.ready
    assert wrong.missing == ["external_id", "holder_name", "phones", "balance"]

    right = preview_file(path, "accounts", settings=settings, today=TODAY, delimiter=";", choice=CHOICE)
    assert right.ready and not right.delimiter_suspect
    assert (right.rows_read, right.rows_good, right.rejected_count) == (4, 2, 2)
    assert [(e.line, e.field) for e in right.rejected] == [(3, "balance"), (4, "external_id")]
    assert right.rejected[1].reason == "duplicate id 'W-1' (first on line 2)"
    assert right.sample[0] == (2, ["W-1", "Иванов Иван", "+7 916 111-22-33", "1 800,50"])
    assert right.resolved.names["balance"] == "Долг, руб., с НДС"


def test_preview_stops_checking_after_its_limit(write_file: Callable[..., Path], settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wizard, "CHECKED_ROWS", 2)
    path = write_file("w.csv", WRONG)
    partial = preview_file(path, "accounts", settings=settings, today=TODAY, delimiter=";", choice=CHOICE)
    assert not partial.complete and partial.rows_read == 2


def test_saved_mapping_is_used_where_the_file_has_those_columns() -> None:
    header = ["Долг, руб., с НДС", "Л/с", "ФИО, полностью", "Телефон, моб.", "Услуга"]
    choice = suggest_mapping("accounts", header, {**CHOICE, "tariff": ["Тарифный план"]})
    assert choice["balance"] == ["Долг, руб., с НДС"] and choice["holder_name"] == ["ФИО, полностью"]
    assert choice["service_name"] == ["Услуга"]  # a default name, not in the saved mapping
    assert "tariff" not in choice  # saved, but this file has no such column
    _resolved, twice = build_resolved("accounts", header, {"external_id": ["Л/с"], "account": ["Л/с"],
                                                           "holder_name": ["Л/с"]})
    assert twice == ["Л/с"]


@pytest.mark.parametrize("parallel", [False, True])
def test_confirmed_import_uses_the_choices(db, write_file: Callable[..., Path], settings: Settings,
                                           parallel: bool) -> None:
    path = write_file("w.csv", WRONG)
    src = open_csv(path, delimiter=";")
    header = src.header
    src.close()
    resolved, _twice = build_resolved("accounts", header, CHOICE)
    seen: list[tuple[int, int]] = []
    report = import_accounts(db.sessions, path, settings=settings, today=TODAY, now=NOW, parallel=parallel,
                             columns=FixedColumns(resolved, header), delimiter=";", encoding="cp1251",
                             on_progress=lambda done, size: seen.append((done, size)))
    assert (report.rows_total, report.rows_ok, report.rows_bad) == (4, 2, 2)
    assert seen and seen[-1][1] == path.stat().st_size
    with db.sessions() as s:
        assert sorted(s.scalars(select(Account.external_id))) == ["W-1", "W-4"]
        assert s.scalar(select(func.count()).select_from(ImportRun)) == 1


def test_original_lines_for_the_rejected_rows_file(write_file: Callable[..., Path]) -> None:
    path = write_file("w.csv", WRONG)
    assert original_lines(path, "cp1251", {3, 5}) == {3: "W-2;Петрова Анна;+7 916 222-33-44;много",
                                                      5: "W-4;Сидоров Олег;+7 916 444-55-66;700"}
