"""ivr.web.process: click-to-call from the web process goes through the parent over a real pipe."""

from __future__ import annotations

import asyncio
import multiprocessing
from typing import Any

import pytest

from ivr.web.deps import ClickToCallError
from ivr.web.process import ClickProxy, ClickRelay


class FakeClick:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.release = asyncio.Event()

    async def call(self, **kwargs: Any) -> str:
        self.calls.append(kwargs)
        if kwargs["operator_phone"] == "PJSIP/slow":
            await self.release.wait()
        if kwargs["operator_phone"] == "PJSIP/busy":
            raise ClickToCallError("no free line")
        if kwargs["operator_phone"] == "PJSIP/bug":
            raise KeyError("unexpected")
        return f"op-{kwargs['task_id']}"


def _call(proxy: ClickProxy, phone: str, task_id: int) -> Any:
    return proxy.call(operator_phone=phone, subscriber_phone="+79161234567", task_id=task_id, account_id=7,
                      operator_id=3, override_reason=None)


async def test_calls_are_placed_by_the_parent_and_errors_come_back_as_messages() -> None:
    parent_conn, child_conn = multiprocessing.Pipe()
    click = FakeClick()
    relay = ClickRelay(parent_conn, click)
    relay.start()
    proxy = ClickProxy(child_conn)
    try:
        # a slow call does not hold up the others: replies are matched to their requests
        slow = asyncio.ensure_future(_call(proxy, "PJSIP/slow", 1))
        assert await asyncio.wait_for(_call(proxy, "PJSIP/101", 2), 30) == "op-2"
        assert not slow.done()
        click.release.set()
        assert await asyncio.wait_for(slow, 30) == "op-1"
        with pytest.raises(ClickToCallError, match="no free line"):
            await asyncio.wait_for(_call(proxy, "PJSIP/busy", 3), 30)
        # an unexpected failure is not shown to the operator as a traceback
        with pytest.raises(ClickToCallError, match="could not be placed"):
            await asyncio.wait_for(_call(proxy, "PJSIP/bug", 4), 30)
        assert [c["task_id"] for c in click.calls] == [1, 2, 3, 4]
        assert click.calls[1] == {"operator_phone": "PJSIP/101", "subscriber_phone": "+79161234567", "task_id": 2,
                                  "account_id": 7, "operator_id": 3, "override_reason": None}
    finally:
        relay.stop()


async def test_a_waiting_operator_gets_an_error_when_the_parent_goes_away() -> None:
    parent_conn, child_conn = multiprocessing.Pipe()
    click = FakeClick()
    relay = ClickRelay(parent_conn, click)
    relay.start()
    proxy = ClickProxy(child_conn)
    pending = asyncio.ensure_future(_call(proxy, "PJSIP/slow", 1))
    while not click.calls:  # the request reached the parent
        await asyncio.sleep(0.01)
    relay.stop()
    parent_conn.close()
    with pytest.raises(ClickToCallError, match="not answering"):
        await asyncio.wait_for(pending, 30)
