"""The import wizard: upload, a preview that stores nothing, the mapping saved for the next file,
confirm through the real importer on the background worker, the history and its rejected-rows CSV."""

from __future__ import annotations

import csv
import io
import re
import threading
from typing import Any

import pytest
from sqlalchemy import func, select

from ivr.db.models import Account, ImportMapping, ImportRun
from ivr.web.admin_import import worker_of
from ivr.wiring import Database

from .conftest import Browser

# The header has more commas (inside the column names) than semicolons: the sniffer picks ","
# although the rows are separated by ";". Only the preview can catch that.
WRONG_DELIMITER = (
    "Л/с;ФИО, полностью;Телефон, моб.;Долг, руб., с НДС\n"
    "W-1;Иванов Иван;+7 916 111-22-33;1 800,50\n"
    "W-2;Петрова Анна;+7 916 222-33-44;много\n"
    "W-3;Сидоров Олег;+7 916 333-44-55;700\n"
)
MAPPING = {"map_external_id": "Л/с", "map_holder_name": "ФИО, полностью", "map_phones": "Телефон, моб.",
           "map_balance": "Долг, руб., с НДС"}
GOOD = (
    "Лицевой счёт;ФИО;Телефон;Сумма долга\n"
    "G-1;Иванов Иван;+7 916 111-22-33;1 800,50\n"
    "G-2;Петрова Анна;12345;950,00\n"
    "G-3;Сидоров Олег;+7 916 333-44-55;700\n"
)


def upload(b: Browser, content: bytes, kind: str = "accounts", filename: str = "billing.csv") -> str:
    """Upload a file; the token of its preview."""
    response = b.client.post("/admin/import", data={"csrf": b.csrf, "kind": kind},
                             files={"file": (filename, content, "text/csv")}, follow_redirects=False)
    assert response.status_code == 303, response.text
    m = re.fullmatch(r"/admin/import/preview/([\w-]+)", response.headers["location"])
    assert m, response.headers["location"]
    return m.group(1)


def upload_and_confirm(b: Browser, kind: str, content: bytes, filename: str = "billing.csv") -> Any:
    """The whole wizard as an admin who accepts the preview: upload, preview, confirm, wait for
    the background import; the job's page (or the upload form again if the file is unreadable)."""
    response = b.client.post("/admin/import", data={"csrf": b.csrf, "kind": kind},
                             files={"file": (filename, content, "text/csv")}, follow_redirects=False)
    if response.status_code != 303:
        return response
    preview = b.get(response.headers["location"])
    if preview.status_code != 200 or 'id="confirm" disabled' in preview.text:
        return preview  # unreadable, or columns to choose: what the admin sees
    token = response.headers["location"].rsplit("/", 1)[1]
    return confirm(b, b.client.app, token, form_of(preview.text))


def accounts(db: Database) -> list[str]:
    with db.sessions() as s:
        return sorted(s.scalars(select(Account.external_id)))


def runs(db: Database) -> int:
    with db.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(ImportRun)) or 0)


def table(html: str, dom_id: str) -> list[list[str]]:
    body = html.split(f'id="{dom_id}"', 1)[1].split("</table>", 1)[0].split("<tbody>", 1)[1]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def selected(html: str, select_id: str) -> str:
    block = html.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    m = re.search(r'<option value="([^"]*)" selected>', block)
    return m.group(1) if m else ""


def confirm(b: Browser, app: Any, token: str, data: dict[str, Any]) -> Any:
    response = b.post(f"/admin/import/preview/{token}", {**data, "action": "confirm"})
    assert response.status_code == 303, response.text
    job_id = response.headers["location"].rsplit("/", 1)[1]
    job = worker_of_app(app).get(job_id)
    assert job is not None and job.future is not None
    job.future.result(timeout=60)  # the background import: wait on its completion, not on a clock
    return b.get(response.headers["location"])


def worker_of_app(app: Any) -> Any:
    class _Req:  # worker_of only needs request.app
        pass

    req = _Req()
    req.app = app  # type: ignore[attr-defined]
    return worker_of(req)  # type: ignore[arg-type]


def form_of(html: str) -> dict[str, Any]:
    """The preview form's fields as the browser would send them (selected options)."""
    data: dict[str, Any] = {}
    for name in ("shown_encoding", "shown_delimiter"):
        m = re.search(rf'name="{name}" value="([^"]*)"', html)
        assert m
        data[name] = m.group(1).replace("&#34;", '"')
    data["encoding"] = data["shown_encoding"]
    data["delimiter"] = data["shown_delimiter"]
    for sel in re.finditer(r'<select name="(map_\w+)" id="[^"]*"[^>]*>(.*?)</select>', html, re.S):
        m = re.search(r'<option value="([^"]*)" selected>', sel.group(2))
        data.setdefault(sel.group(1), [])
        data[sel.group(1)].append(m.group(1) if m else "")
    return data


def test_preview_catches_the_wrong_delimiter_and_stores_nothing(db: Database, as_admin: Browser, app: Any) -> None:
    token = upload(as_admin, WRONG_DELIMITER.encode("utf-8"))
    page = as_admin.get(f"/admin/import/preview/{token}")
    assert page.status_code == 200
    html = page.text
    assert selected(html, "delimiter") == ","  # what the sniffer picked from the header
    assert 'id="delimiter-warning"' in html  # the rows do not split into the header's columns
    assert 'id="mapping-missing"' in html and 'disabled' in html.split('id="confirm"')[1].split(">")[0]
    # nothing stored by upload or preview
    assert accounts(db) == [] and runs(db) == 0

    # the admin picks ";": read again with the same (now stale) mapping fields
    page = as_admin.post(f"/admin/import/preview/{token}", {**form_of(html), "delimiter": ";", "action": "preview"})
    html = page.text
    assert page.status_code == 200 and selected(html, "delimiter") == ";"
    assert 'id="delimiter-warning"' not in html
    header = re.findall(r"<th>([^<]*)</th>", html.split('id="sample"')[1].split("</thead>")[0])
    assert header == ["Л/с", "ФИО, полностью", "Телефон, моб.", "Долг, руб., с НДС"]
    sample = table(html, "sample")
    assert sample[0] == ["2", "W-1", "Иванов Иван", "+7 916 111-22-33", "1 800,50"]
    # "Л/с" is a known name; the others are chosen by hand
    assert selected(html, "map_external_id") == "Л/с"
    data = {**form_of(html), **MAPPING, "action": "preview"}
    page = as_admin.post(f"/admin/import/preview/{token}", data)
    html = page.text
    assert 'id="mapping-missing"' not in html
    assert re.search(r'id="preview-good">2<', html) and re.search(r'id="preview-bad">1<', html)
    rejected = table(html, "preview-rejected")
    # the line number, the FILE's column name and the reason in Russian
    assert rejected == [["3", "Долг, руб., с НДС", "много", "«Долг, руб., с НДС»: «много» — не число"]]
    assert accounts(db) == [] and runs(db) == 0  # still nothing stored

    done = confirm(as_admin, app, token, {**form_of(html), **MAPPING})
    assert accounts(db) == ["W-1", "W-3"]
    assert re.search(r'id="rows-ok">2<', done.text) and re.search(r'id="rows-bad">1<', done.text)
    assert "«Долг, руб., с НДС»: «много» — не число" in done.text


def test_mapping_is_saved_and_offered_for_the_next_file(db: Database, as_admin: Browser, app: Any) -> None:
    token = upload(as_admin, WRONG_DELIMITER.encode("utf-8"))
    html = as_admin.post(f"/admin/import/preview/{token}",
                         {**form_of(as_admin.get(f"/admin/import/preview/{token}").text), "delimiter": ";",
                          "action": "preview"}).text
    confirm(as_admin, app, token, {**form_of(html), **MAPPING})
    with db.sessions() as s:
        saved = s.get(ImportMapping, "accounts")
        assert saved is not None and saved.updated_by == "admin"
        assert saved.columns["holder_name"] == ["ФИО, полностью"]
        assert saved.columns["balance"] == ["Долг, руб., с НДС"]

    # the next export of the same billing: same columns, other rows, other order of columns
    nxt = ("Л/с;Долг, руб., с НДС;Телефон, моб.;ФИО, полностью\n"
           "N-1;100;+7 916 555-66-77;Орлова Вера\n")
    token = upload(as_admin, nxt.encode("cp1251"))
    html = as_admin.post(f"/admin/import/preview/{token}",
                         {**form_of(as_admin.get(f"/admin/import/preview/{token}").text), "delimiter": ";",
                          "action": "preview"}).text
    for field, column in MAPPING.items():
        assert selected(html, field) == column, field
    assert 'id="mapping-missing"' not in html and re.search(r'id="preview-good">1<', html)
    assert selected(html, "encoding") == "cp1251"


def test_rejected_rows_download_has_line_original_text_and_reason(db: Database, as_admin: Browser, app: Any) -> None:
    token = upload(as_admin, GOOD.encode("cp1251"), filename="ноябрь.csv")
    html = as_admin.get(f"/admin/import/preview/{token}").text
    assert re.search(r'id="preview-bad">1<', html)
    confirm(as_admin, app, token, form_of(html))
    assert accounts(db) == ["G-1", "G-3"]

    history = as_admin.get("/admin/import/history")
    row = table(history.text, "import-history")[0]
    assert row[2:6] == ["ноябрь.csv", "3", "2", "1"]
    link = re.search(r'href="(/admin/import/history/\d+/rejected\.csv)"', history.text)
    assert link
    response = as_admin.get(link.group(1))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads it as UTF-8
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows == [
        ["Номер строки", "Исходная строка", "Причина"],
        ["3", "G-2;Петрова Анна;12345;950,00", "«Телефон»: «12345» — слишком короткий"],
    ]
    # the upload itself is gone once imported
    assert not any((app.state.web.upload_dir / "imports").glob("*.csv"))


def test_preview_of_an_unreadable_file_says_why_in_russian(db: Database, as_admin: Browser) -> None:
    token = upload(as_admin, b"PK\x03\x04" + bytes(range(256)) * 4, filename="billing.xlsx")
    page = as_admin.get(f"/admin/import/preview/{token}")
    assert page.status_code == 400
    assert "это книга Excel, а не CSV" in page.text
    assert runs(db) == 0


def test_preview_needs_an_admin_and_a_real_token(db: Database, as_admin: Browser, browser: Any) -> None:
    token = upload(as_admin, GOOD.encode("utf-8"))
    operator = browser("op1")
    assert operator.get(f"/admin/import/preview/{token}").status_code == 403
    assert as_admin.get("/admin/import/preview/..%2F..%2Fweb_secret").status_code == 404
    assert as_admin.get("/admin/import/preview/" + "x" * 32).status_code == 404


def test_confirmed_import_runs_in_the_background(db: Database, as_admin: Browser, app: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """While the import runs, the web process answers: the job's page says it is running."""
    from ivr.billing import importer

    started, gate = threading.Event(), threading.Event()
    real = importer.import_accounts

    def held(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert gate.wait(60), "the test never released the import"
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "import_accounts", held)
    token = upload(as_admin, GOOD.encode("utf-8"))
    html = as_admin.get(f"/admin/import/preview/{token}").text
    response = as_admin.post(f"/admin/import/preview/{token}", {**form_of(html), "action": "confirm"})
    assert response.status_code == 303
    job_url = response.headers["location"]
    try:
        assert started.wait(60)
        page = as_admin.get(job_url)
        assert page.status_code == 200 and 'data-status="running"' in page.text and 'id="job-progress"' in page.text
        assert as_admin.get(job_url + ".json").json()["status"] == "running"
        assert accounts(db) == []
    finally:
        gate.set()
    job = worker_of_app(app).get(job_url.rsplit("/", 1)[1])
    job.future.result(timeout=60)
    done = as_admin.get(job_url)
    assert 'data-status="done"' in done.text and re.search(r'id="rows-ok">2<', done.text)
    assert accounts(db) == ["G-1", "G-3"]


def test_big_file_preview_is_read_in_a_child_process(db: Database, as_admin: Browser,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.web import admin_import

    monkeypatch.setattr(admin_import, "PREVIEW_IN_PROCESS_BYTES", 0)  # every file is "big"
    calls: list[int] = []
    real = admin_import.ProcessPoolExecutor

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(admin_import, "ProcessPoolExecutor", counted)
    token = upload(as_admin, GOOD.encode("utf-8"))
    html = as_admin.get(f"/admin/import/preview/{token}").text
    assert calls == [1]
    assert re.search(r'id="preview-good">2<', html) and re.search(r'id="preview-bad">1<', html)


def test_a_wrong_encoding_choice_is_said_and_can_be_changed(db: Database, as_admin: Browser) -> None:
    token = upload(as_admin, GOOD.encode("cp1251"))
    html = as_admin.get(f"/admin/import/preview/{token}").text
    assert selected(html, "encoding") == "cp1251"
    page = as_admin.post(f"/admin/import/preview/{token}", {**form_of(html), "encoding": "utf-8", "action": "preview"})
    assert page.status_code == 400
    assert "файл не читается в выбранной кодировке" in page.text and selected(page.text, "encoding") == "utf-8"
    again = as_admin.post(f"/admin/import/preview/{token}", {"encoding": "cp1251", "delimiter": ";",
                                                            "action": "preview"})
    assert again.status_code == 200 and re.search(r'id="preview-good">2<', again.text)
    assert accounts(db) == []


def test_confirm_twice_imports_once(db: Database, as_admin: Browser, app: Any,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.billing import importer

    gate = threading.Event()
    real = importer.import_accounts
    monkeypatch.setattr(importer, "import_accounts", lambda *a, **kw: gate.wait(60) and real(*a, **kw))
    token = upload(as_admin, GOOD.encode("utf-8"))
    data = {**form_of(as_admin.get(f"/admin/import/preview/{token}").text), "action": "confirm"}
    first = as_admin.post(f"/admin/import/preview/{token}", data)
    second = as_admin.post(f"/admin/import/preview/{token}", data)  # while the first still runs
    gate.set()
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    worker_of_app(app).get(first.headers["location"].rsplit("/", 1)[1]).future.result(timeout=60)
    assert runs(db) == 1 and accounts(db) == ["G-1", "G-3"]


def test_payments_preview_rejects_unknown_accounts_without_storing(db: Database, as_admin: Browser, app: Any) -> None:
    upload_and_confirm(as_admin, "accounts", GOOD.encode("utf-8"))
    payments = ("Номер платежа;Лицевой счёт;Сумма;Дата платежа\n"
                "P-1;G-1;100,00;18.11.2025\n"
                "P-2;NOPE;10,00;18.11.2025\n"
                "P-3;G-3;abc;18.11.2025\n")
    token = upload(as_admin, payments.encode("utf-8"), kind="payments")
    html = as_admin.get(f"/admin/import/preview/{token}").text
    assert re.search(r'id="preview-good">1<', html) and re.search(r'id="preview-bad">2<', html)
    assert [r[0] for r in table(html, "preview-rejected")] == ["3", "4"]
    assert "«Лицевой счёт»: лицевой счёт «NOPE» не найден" in html
    assert runs(db) == 1  # the accounts import only
    done = confirm(as_admin, app, token, form_of(html))
    assert re.search(r'id="rows-ok">1<', done.text) and re.search(r'id="rows-bad">2<', done.text)
