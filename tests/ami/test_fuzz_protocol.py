"""Random and hostile bytes from the Asterisk side through the AMI parser and the client's event
dispatch: only the module's own error types, no traceback, and what we encode decodes back."""

from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.ami import protocol as p
from ivr.ami.client import AMIClient

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

NAMES = [p.EV_ORIGINATE_RESPONSE, p.EV_HANGUP, p.EV_VARSET, p.EV_SHUTDOWN, p.EV_FULLY_BOOTED, "Newexten", ""]
HEADER_NAMES = [p.ACTION_ID, p.UNIQUEID, p.CHANNEL, p.CAUSE, p.CAUSE_TXT, p.CHANNEL_STATE, p.REASON, p.RESPONSE,
                p.VALUE, p.VARIABLE, p.UPTIME, p.SHUTDOWN, p.RESTART, "Variable", ""]
values = st.one_of(st.sampled_from(["", "0", "-1", "16", "Success", "Failure", "IVR_CALL_ID", "AGISTATUS",
                                    "<unknown>", "1795370949.0", "9" * 5000, "Local/s@x-1;1"]),
                   st.text(max_size=40).map(lambda s: s.replace("\r", "").replace("\n", "")))
headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), values), max_size=10)


def _message(event: str, pairs: list[tuple[str, str]]) -> bytes:
    lines = [f"Event: {event}"] + [f"{k}: {v}" if k else v for k, v in pairs]
    return (p.EOL.join(lines) + p.EOL + p.EOL).encode("utf-8", "surrogatepass")


@FUZZ
@given(st.binary(max_size=600))
def test_decode_any_bytes(raw: bytes) -> None:
    msg = p.decode(raw)
    assert isinstance(msg.kind, str) and isinstance(msg.name, str)
    assert msg.action_id is None or isinstance(msg.action_id, str)
    msg.get(p.UNIQUEID)
    msg.get_all(p.VARIABLE)
    msg.to_dict()
    p.peek_event(raw)
    for _, value in msg.headers:
        p.split_assignment(value)


@FUZZ
@given(st.text(max_size=30), st.lists(st.tuples(st.text(max_size=20), st.text(max_size=60)), max_size=8))
def test_encode_raises_only_invalid_header(action: str, pairs: list[tuple[str, str]]) -> None:
    try:
        raw = p.encode_action(action, pairs)
    except p.InvalidHeader:
        return
    # what we put on the wire is read back exactly, one header per pair
    assert p.decode(raw).headers == ((p.ACTION, action), *pairs)


@FUZZ
@given(st.text(max_size=30), st.text(max_size=60))
def test_encode_variable_raises_only_invalid_header(name: str, value: str) -> None:
    try:
        p.encode_variable(name, value)
    except p.InvalidHeader:
        pass


@FUZZ
@given(st.sampled_from(NAMES), headers, st.booleans())
def test_client_event_dispatch_survives_hostile_events(caplog: pytest.LogCaptureFixture, event: str,
                                                       pairs: list[tuple[str, str]], awaited: bool) -> None:
    client = AMIClient("127.0.0.1", 1, "ivr", "secret")
    for name, value in pairs:  # make the interesting branches reachable: our own call ids
        if name == p.ACTION_ID and awaited:
            client._awaiting_result.add(value)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="ivr.ami"):
        client._on_event(_message(event, pairs))
        client._on_event(_message(event, [*pairs, (p.VARIABLE, "IVR_CALL_ID=x")]))
    assert not [r for r in caplog.records if r.exc_info]
