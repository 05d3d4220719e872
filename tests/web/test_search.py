"""The subscriber search on both databases: names folded (any case, ё = е) in SQL, phones matched
in any format, paging by LIMIT."""

from __future__ import annotations

from ivr.web.search import search_accounts
from ivr.wiring import Database
from tests.web.conftest import make_account


def _ids(db: Database, query: str, page: int = 1, page_size: int = 20) -> list[str]:
    with db.sessions() as s:
        return [h.external_id for h in search_accounts(s, query, page, page_size).hits]


def test_search_on_each_database(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        make_account(s, "A-1", holder="Петров Пётр Петрович", phones=("+79161234567",), with_case=False)
        make_account(s, "A-2", holder="СЁМИН ФЁДОР", phones=("+74957770099", "+79035550011"), with_case=False)
        make_account(s, "B-3", holder="Иванова Анна", phones=("+79261112233",), with_case=False)
        make_account(s, "C_1%", holder="Test O'Brien", phones=(), with_case=False)
    assert _ids(any_db, "пётр") == ["A-1"]
    assert _ids(any_db, "ПЕТРОВ") == ["A-1"]
    assert _ids(any_db, "семин федор") == ["A-2"]
    assert _ids(any_db, "Фёдор") == ["A-2"]
    assert _ids(any_db, "o'brien") == ["C_1%"]
    assert _ids(any_db, "8 903 555-00-11") == ["A-2"]
    assert _ids(any_db, "+7 (916) 123-45-67") == ["A-1"]
    assert _ids(any_db, "2233") == ["B-3"]
    assert _ids(any_db, "A-") == ["A-1", "A-2"]
    assert _ids(any_db, "C_") == ["C_1%"]  # LIKE wildcards in the query are literal
    assert _ids(any_db, "C%") == []
    assert _ids(any_db, "A-", page=2, page_size=1) == ["A-2"]
    assert _ids(any_db, "B-3") == ["B-3"]
    assert _ids(any_db, "  ") == []
