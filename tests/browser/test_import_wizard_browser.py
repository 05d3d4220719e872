"""The import wizard in a real browser: a file whose header makes the sniffer pick the wrong
delimiter is caught in the preview (the rows do not split, the warning says so), the admin changes
the delimiter and picks the columns the defaults do not know, nothing is stored until confirm,
and confirm stores the good rows through the background import; the history offers the rejected
rows. Screenshots at laptop and phone size are written as test artefacts."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import func, select

from ivr.db.models import Account, ImportMapping, ImportRun

from .conftest import LiveServer, add_user, login, screenshot

pytestmark = pytest.mark.browser

# more commas inside the column names than semicolons between them: the sniffer picks ","
WRONG_DELIMITER = (
    "Л/с;ФИО, полностью;Телефон, моб.;Долг, руб., с НДС\n"
    "W-1;Иванов Иван;+7 916 111-22-33;1 800,50\n"
    "W-2;Петрова Анна;+7 916 222-33-44;много\n"
    "W-3;Сидоров Олег;+7 916 333-44-55;700\n"
).encode("cp1251")


def _stored(server: LiveServer) -> tuple[list[str], int]:
    with server.db.sessions() as s:
        return (sorted(s.scalars(select(Account.external_id))),
                int(s.scalar(select(func.count()).select_from(ImportRun)) or 0))


def test_wizard_catches_the_wrong_delimiter_and_stores_only_on_confirm(chromium: Any, live_server: LiveServer) -> None:
    add_user(live_server.db, "admin", "admin")
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="ru-RU", accept_downloads=True)
    page = context.new_page()
    try:
        login(page, live_server, "admin")
        page.goto(live_server.url + "/admin/import")
        page.set_input_files("input[name=file]", files=[{"name": "выгрузка.csv", "mimeType": "text/csv",
                                                         "buffer": WRONG_DELIMITER}])
        page.click("#import-form button[type=submit]")
        page.wait_for_selector("#preview-form")

        # 1. the preview shows what was detected and why it looks wrong; confirm is not possible
        assert page.locator("#delimiter").input_value() == ","
        assert page.locator("#encoding").input_value() == "cp1251"
        assert "разделитель выбран неверно" in page.locator("#delimiter-warning").inner_text()
        assert page.locator("#confirm").is_disabled()
        assert _stored(live_server) == ([], 0)
        screenshot(page, "import-preview-wrong-delimiter")

        # 2. the admin chooses ";" and reads the file again: the columns are right now
        page.select_option("#delimiter", ";")
        page.click("#reread")
        page.wait_for_selector("#sample")
        assert page.locator("#delimiter-warning").count() == 0
        assert page.locator("#sample thead th").all_inner_texts() == [
            "Строка", "Л/с", "ФИО, полностью", "Телефон, моб.", "Долг, руб., с НДС"]
        assert page.locator("#sample tbody tr").first.locator("td").all_inner_texts() == [
            "2", "W-1", "Иванов Иван", "+7 916 111-22-33", "1 800,50"]
        # "Л/с" is a known column name; the others are not, so the admin maps them
        assert page.locator("#map_external_id").input_value() == "Л/с"
        assert page.locator("#mapping-missing").count() == 1
        page.select_option("#map_holder_name", "ФИО, полностью")
        page.select_option("#map_phones", "Телефон, моб.")
        page.select_option("#map_balance", "Долг, руб., с НДС")
        page.click("#apply-mapping")
        page.wait_for_selector("#preview-counts")
        assert page.locator("#preview-good").inner_text() == "2"
        assert page.locator("#preview-bad").inner_text() == "1"
        rejected = page.locator("#preview-rejected tbody tr").first.locator("td").all_inner_texts()
        assert rejected == ["3", "Долг, руб., с НДС", "много", "«Долг, руб., с НДС»: «много» — не число"]
        assert _stored(live_server) == ([], 0)  # still nothing stored
        screenshot(page, "import-preview")

        # 3. confirm: the import runs in the background; the page follows it to the report
        page.click("#confirm")
        page.wait_for_selector("#rows-ok", timeout=60_000)
        assert page.locator("#rows-ok").inner_text() == "2"
        assert page.locator("#rows-bad").inner_text() == "1"
        assert _stored(live_server) == (["W-1", "W-3"], 1)
        with live_server.db.sessions() as s:
            mapping = s.get(ImportMapping, "accounts")
            assert mapping is not None and mapping.columns["balance"] == ["Долг, руб., с НДС"]
        screenshot(page, "import-job-done")

        # 4. the history, and the rejected rows as a file
        page.goto(live_server.url + "/admin/import/history")
        cells = page.locator("#import-history tbody tr").first.locator("td").all_inner_texts()
        assert cells[2:6] == ["выгрузка.csv", "3", "2", "1"]
        with page.expect_download() as info:
            page.click("#import-history a[download]")
        text = open(info.value.path(), encoding="utf-8-sig").read()
        rows = list(csv.reader(io.StringIO(text), delimiter=";"))
        assert rows[1] == ["3", "W-2;Петрова Анна;+7 916 222-33-44;много", "«Долг, руб., с НДС»: «много» — не число"]
        screenshot(page, "import-history")
    finally:
        context.close()
