"""Fuzzing the JSON import API: any list of objects is imported or answered with a clear JSON
error (400/422), never a server error."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_import_api import api, token  # noqa: F401 (fixtures)

KEYS = st.sampled_from(["external_id", "holder_name", "phones", "balance", "due_date", "block_date", "language",
                        "timezone", "currency", "payment_id", "account", "amount", "paid_on", "foo", 'a"b', "x;y"])
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), TEXT,
                   st.sampled_from(["+7 916 123-45-67", "1 800,50", "01.01.0001", "31.12.9999", '"', "=1+1"]),
                   st.lists(TEXT, max_size=3))
OBJECTS = st.lists(st.dictionaries(KEYS, VALUES, min_size=1, max_size=8), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["accounts", "payments"]), items=OBJECTS)
def test_any_objects_get_a_json_answer(api: Any, kind: str, items: list[dict[str, Any]]) -> None:  # noqa: F811
    response = api.post(f"/api/v1/{kind}", json=items)
    assert response.status_code in (200, 400, 422), response.text
    body = response.json()
    if response.status_code != 200:
        assert body["error"]
