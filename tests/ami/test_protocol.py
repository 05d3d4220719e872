"""Wire format: framing, decoding of recorded messages, injection safety, Variable quoting."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.ami import protocol as p
from tests.ami import transcript as tr
from tests.ami.fake_ami import asterisk_variables, separate_args


def test_encode_action_is_crlf_framed_with_action_first() -> None:
    raw = p.encode_action(p.PING, [(p.ACTION_ID, "ping-1")])
    assert raw == b"Action: Ping\r\nActionID: ping-1\r\n\r\n"


def test_encode_matches_the_recorded_login_bytes(transcripts: Path) -> None:
    sent = [i for i in tr.parse(transcripts / "ami-login-ping-logoff.txt") if i.direction == tr.CLIENT]
    login = p.encode_action(p.LOGIN, [(p.ACTION_ID, "lab-1"), (p.USERNAME, "lab"), (p.SECRET, "labsecret")])
    assert login.decode() == sent[0].message


@pytest.mark.parametrize("value", ["x\r\nAction: Hangup", "x\nAction: Hangup", "x\rY", "a\x00b"])
def test_cr_lf_nul_in_a_value_can_never_reach_the_wire(value: str) -> None:
    with pytest.raises(p.InvalidHeader):
        p.encode_action(p.ORIGINATE, [(p.CHANNEL, value)])
    with pytest.raises(p.InvalidHeader):
        p.encode_variable("NOTE", value)


@pytest.mark.parametrize("name", ["Bad Name", "X:Y", "X\r\nY", ""])
def test_header_names_are_checked(name: str) -> None:
    with pytest.raises(p.InvalidHeader):
        p.encode_action(p.PING, [(name, "v")])


@pytest.mark.parametrize("name", ["A=B", "A,B", 'A"', "A B", ""])
def test_variable_names_that_asterisk_would_split_are_refused(name: str) -> None:
    with pytest.raises(p.InvalidHeader):
        p.encode_variable(name, "v")


def test_line_and_header_count_limits() -> None:
    with pytest.raises(p.InvalidHeader):
        p.encode_action(p.ORIGINATE, [(p.VARIABLE, "X=" + "a" * 2000)])
    with pytest.raises(p.InvalidHeader):
        p.encode_action(p.ORIGINATE, [(p.VARIABLE, f"V{i}=1") for i in range(200)])


def test_decode_recorded_messages(transcripts: Path) -> None:
    items = tr.parse(transcripts / "ami-originate-busy.txt")
    by_event: dict[str, p.Message] = {}
    for item in items:
        if item.direction == tr.ASTERISK and item.message.startswith("Event:"):
            msg = p.decode(item.message.encode())
            by_event.setdefault(msg.name, msg)
    resp = by_event["OriginateResponse"]
    assert resp.kind == "event"
    assert resp.get("Response") == "Failure"
    assert resp.get("reason") == "5"  # names compare case-insensitively
    assert resp.get(p.UNIQUEID) == p.UNKNOWN_UNIQUEID
    newchannel = by_event["Newchannel"]
    assert newchannel.get("AccountCode") == ""  # "AccountCode: " on the wire


def test_decode_keeps_duplicates_and_odd_lines() -> None:
    msg = p.decode(b"Event: Status\r\nVariable: A=1\r\nVariable: B=x: y\r\nno colon here\r\n\r\n")
    assert msg.get_all("Variable") == ["A=1", "B=x: y"]
    assert msg.to_dict()["Variable"] == "A=1"
    assert ("", "no colon here") in msg.headers
    assert p.split_assignment("B=x=y") == ("B", "x=y")
    assert p.decode(b"Response: Error\r\n\r\n").kind == "response"
    assert p.decode("Event: X\r\nName: \xff\r\n\r\n".encode("latin-1")).get("Name") == "\ufffd"


def test_peek_event_does_not_need_the_body() -> None:
    assert p.peek_event(b"Event: VarSet\r\nPrivilege: dialplan,all\r\n\r\n") == "VarSet"
    assert p.peek_event(b"Response: Success\r\n\r\n") is None


# --- Variable quoting: emulation checked against the recording, then the encoder against it ---

def _originate_variable_headers(path: Path) -> list[str]:
    sent = [i.message for i in tr.parse(path) if i.direction == tr.CLIENT and i.message.startswith("Action: Originate")]
    return [v for k, v in tr.headers_of(sent[0]) if k == "Variable"]


def _varset_values(path: Path, name: str) -> set[str]:
    values = set()
    for item in tr.parse(path):
        if item.direction == tr.ASTERISK and item.message.startswith("Event: VarSet\r\n"):
            headers = dict(tr.headers_of(item.message))
            if headers["Variable"] == name:
                values.add(headers["Value"])
    return values


@pytest.mark.parametrize("scenario", ["agi-env-args", "agi-env-args-unquoted"])
def test_asterisk_variable_emulation_matches_the_recording(transcripts: Path, scenario: str) -> None:
    path = transcripts / "agi-calls-ami" / f"{scenario}.ami.txt"
    header = next(h for h in _originate_variable_headers(path) if h.startswith("AGI_ARGS="))
    decoded = dict(asterisk_variables(header))
    assert {decoded["AGI_ARGS"]} == _varset_values(path, "AGI_ARGS")


def test_quoted_variable_is_encoded_exactly_as_recorded(transcripts: Path) -> None:
    path = transcripts / "agi-calls-ami" / "agi-env-args.ami.txt"
    assert p.encode_variable("AGI_ARGS", "first arg,42,,Иванов И.И.") in _originate_variable_headers(path)
    assert p.encode_variable("AGI_PATH", "env-args") in _originate_variable_headers(path)


def test_separate_args_edge_cases() -> None:
    assert separate_args("a,b") == ["a", "b"]
    assert separate_args("a,") == ["a", ""]
    assert separate_args('"a,b",c') == ["a,b", "c"]
    assert separate_args("f(a,b),c") == ["f(a,b)", "c"]
    assert separate_args(r"a\,b") == ["a,b"]


@given(st.text(alphabet=st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]), max_size=60))
def test_every_value_survives_asterisk_parsing(value: str) -> None:
    header = p.encode_variable("IVR_VALUE", value)
    assert asterisk_variables(header) == [("IVR_VALUE", value)]


def test_plain_values_stay_unquoted() -> None:
    # identical to what the recordings sent, so nothing changes for ordinary values
    assert p.encode_variable("DIGITS", "1w2") == "DIGITS=1w2"
    assert p.encode_variable("X", 'say "hi", now') == 'X="say \\"hi\\", now"'


# --- the transcript parser ---------------------------------------------------------------

def test_transcript_parser_items(transcripts: Path) -> None:
    items = tr.parse(transcripts / "ami-restart.txt")
    banner = [i for i in items if i.direction == tr.ASTERISK and i.message.startswith("Asterisk")]
    assert [b.message for b in banner] == ["Asterisk Call Manager/11.0.0\r\n"] * 2
    shutdown = next(i for i in items if i.message.startswith("Event: Shutdown"))
    assert shutdown.t == pytest.approx(0.010)
    assert shutdown.message.endswith("Restart: True\r\n\r\n")
    notes = [i for i in items if i.direction == tr.NOTE]
    assert any(n.message.startswith("reconnect attempt 1 failed") and n.t == pytest.approx(0.373) for n in notes)
    agi = tr.parse(transcripts / "agi-env.txt")
    assert any(i.message == "agi_network: yes\n" for i in agi)
