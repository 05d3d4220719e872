"""Pure wire-format tests: command strings, quoting and injection, reply parsing, line splitting."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.agi import protocol as p
from tests.agi.replay import Send, load


def asterisk_args(line: str) -> list[str]:
    """Python mirror of res_agi.c parse_args(): how Asterisk splits a command line."""
    args: list[str] = []
    quoted = escaped = False
    whitespace = True
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and whitespace:
                args.append("")
                whitespace = False
            continue
        if ch in " \t" and not quoted and not escaped:
            whitespace = True
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if whitespace:
            args.append("")
            whitespace = False
        args[-1] += ch
        escaped = False
    return args


# --- the exact forms seen in the recordings ------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (p.cmd_stream_file("beep"), 'STREAM FILE beep ""'),
        (p.cmd_stream_file("demo-congrats", "0123456789*#"), 'STREAM FILE demo-congrats "0123456789*#"'),
        (p.cmd_stream_file("hello-world", "", 4000), 'STREAM FILE hello-world "" 4000'),
        (p.cmd_say_number(5), 'SAY NUMBER 5 ""'),
        (p.cmd_say_number(1800, "", "f"), 'SAY NUMBER 1800 "" f'),
        (p.cmd_say_digits("9876543210", "#"), 'SAY DIGITS 9876543210 "#"'),
        (p.cmd_get_data("beep", 10000, 4), "GET DATA beep 10000 4"),
        (p.cmd_wait_for_digit(-1), "WAIT FOR DIGIT -1"),
        (p.cmd_verbose("after hangup"), 'VERBOSE "after hangup" 1'),
        (p.cmd_set_variable("LAB_DEAD", "x"), 'SET VARIABLE LAB_DEAD "x"'),
        (p.cmd_set_variable("LAB_G", ""), 'SET VARIABLE LAB_G ""'),
        (p.cmd_set_variable("LAB_H", "back\\slash"), 'SET VARIABLE LAB_H "back\\\\slash"'),
        (p.cmd_set_variable("LAB_B", 'He said "pay 1800" today'), 'SET VARIABLE LAB_B "He said \\"pay 1800\\" today"'),
        (p.cmd_get_variable("CHANNEL(language)"), "GET VARIABLE CHANNEL(language)"),
        (p.cmd_get_full_variable("${LAB_B}"), "GET FULL VARIABLE ${LAB_B}"),
        (p.cmd_exec("Playback", ["beep"]), "EXEC Playback beep"),
        (p.cmd_exec("Playback", ["beep", "noanswer"]), 'EXEC Playback "beep,noanswer"'),
        (p.cmd_exec("Set", ["CHANNEL(language)=ru"]), 'EXEC Set "CHANNEL(language)=ru"'),
    ],
)
def test_command_forms(line: str, expected: str) -> None:
    assert line == expected


def test_every_recorded_command_our_api_can_form_is_in_the_recordings(transcripts: Path) -> None:
    recorded = {c for f in transcripts.glob("agi-*.txt") for c in load(transcripts, f.stem).commands()}
    ours = {p.cmd_answer(), p.cmd_hangup(), p.cmd_noop(), p.cmd_channel_status(),
            p.cmd_get_data("beep", 1000, 1), p.cmd_wait_for_digit(100), p.cmd_say_number(5),
            p.cmd_stream_file("beep"), p.cmd_verbose("after hangup"), p.cmd_exec("Playback", ["beep"])}
    assert ours <= recorded


# --- validation -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build",
    [
        lambda: p.cmd_stream_file("two words"),
        lambda: p.cmd_stream_file("beep\nANSWER"),
        lambda: p.cmd_stream_file('be"ep'),
        lambda: p.cmd_stream_file(""),
        lambda: p.cmd_stream_file("beep", "12x"),
        lambda: p.cmd_stream_file("beep", '"'),
        lambda: p.cmd_set_variable("A B", "x"),
        lambda: p.cmd_set_variable("A\r\nANSWER", "x"),
        lambda: p.cmd_get_variable("X\nHANGUP"),
        lambda: p.cmd_get_data("beep", 1000, 0),
        lambda: p.cmd_say_digits("12a"),
        lambda: p.cmd_say_number(5, "", "x y"),
        lambda: p.cmd_verbose("hi", 5),
        lambda: p.cmd_exec("Play back", ["x"]),
        lambda: p.check_raw_line("NOOP\nANSWER"),
        lambda: p.check_raw_line("NOOP\rANSWER"),
        lambda: p.check_raw_line("  "),
    ],
)
def test_bad_arguments_are_refused(build) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        build()


# --- injection -------------------------------------------------------------------------------------
def test_injection_attempt_stays_one_argument() -> None:
    evil = 'x"\n ANSWER'
    for line, tokens in (
        (p.cmd_set_variable("X", evil), ["SET", "VARIABLE", "X"]),
        (p.cmd_verbose(evil), ["VERBOSE"]),
        (p.cmd_exec("Verbose", [evil]), ["EXEC", "Verbose"]),
        (p.cmd_get_full_variable(evil), ["GET", "FULL", "VARIABLE"]),
    ):
        assert "\n" not in line and "\r" not in line
        args = asterisk_args(line)
        assert args[: len(tokens)] == tokens
        assert args[len(tokens)] == 'x"  ANSWER'  # the newline became a space, inside the quotes
        assert "ANSWER" not in args[len(tokens) + 1 :]


@given(st.text())
def test_any_text_is_one_line_and_round_trips(value: str) -> None:
    clean = p.sanitize_text(value)
    line = p.cmd_set_variable("X", value)
    assert "\n" not in line and "\r" not in line
    assert asterisk_args(line) == ["SET", "VARIABLE", "X", clean]
    assert asterisk_args(p.cmd_verbose(value, 2)) == ["VERBOSE", clean, "2"]
    if value:
        assert asterisk_args(p.cmd_get_full_variable(value)) == ["GET", "FULL", "VARIABLE", clean]
        assert asterisk_args(p.cmd_exec("Set", [value]))[2] == clean


# --- replies ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "code", "result", "data", "endpos"),
    [
        ("200 result=0", 200, "0", None, None),
        ("200 result=53 endpos=17760", 200, "53", None, 17760),
        ("200 result=-1 endpos=0", 200, "-1", None, 0),
        ("200 result=0 endpos=-1", 200, "0", None, -1),
        ("200 result=1 (a (b) c)", 200, "1", "a (b) c", None),
        ("200 result=1 ()", 200, "1", "", None),
        ('200 result=1 (debt-42 "quoted" value)', 200, "1", 'debt-42 "quoted" value', None),
        ("200 result= (timeout)", 200, "", "timeout", None),
        ("200 result=7 (timeout)", 200, "7", "timeout", None),
        ("200 result=", 200, "", None, None),
        ("200 result=-2", 200, "-2", None, None),
        ("200 result=0 (timeout) endpos=1234", 200, "0", "timeout", 1234),
        ("510 Invalid or unknown command", 510, "", "Invalid or unknown command", None),
        ("511 Command Not Permitted on a dead channel or intercept routine", 511, "",
         "Command Not Permitted on a dead channel or intercept routine", None),
    ],
)
def test_parse_reply(line: str, code: int, result: str, data: str | None, endpos: int | None) -> None:
    r = p.parse_reply(line)
    assert (r.code, r.result, r.data, r.endpos) == (code, result, data, endpos)


def test_every_recorded_reply_parses(transcripts: Path) -> None:
    count = 0
    for path in [*transcripts.glob("agi-*.txt"), *transcripts.glob("*.agi.txt")]:
        t = load(transcripts, path.stem)
        in_usage = False
        for step in t.steps:
            if not isinstance(step, Send) or step.line == "HANGUP":
                continue
            if in_usage or step.line.startswith("520-"):
                in_usage = not step.line.startswith("520 ")
                continue
            reply = p.parse_reply(step.line)
            assert reply.code in (200, 510, 511)
            count += 1
    assert count > 150


def test_garbage_is_not_a_reply() -> None:
    for line in ("HELLO", "20 result=1", ""):
        with pytest.raises(p.AGIProtocolError):
            p.parse_reply(line)


def test_digit_codes() -> None:
    assert [p.digit_from_result(n) for n in (53, 42, 35, 57, 0)] == ["5", "*", "#", "9", None]


# --- environment and routes --------------------------------------------------------------------------
def test_env_line_values_kept_verbatim() -> None:
    assert p.parse_env_line("agi_arg_3: ") == ("agi_arg_3", "")
    assert p.parse_env_line("agi_request: agi://127.0.0.1:4573/x") == ("agi_request", "agi://127.0.0.1:4573/x")
    assert p.parse_env_line("agi_arg_1: a: b ") == ("agi_arg_1", "a: b ")
    assert p.parse_env_line("garbage") is None


def test_env_args_stop_at_gap() -> None:
    assert p.env_args({"agi_arg_1": "a", "agi_arg_2": "", "agi_arg_4": "d"}) == ["a", ""]


def test_route_and_query() -> None:
    env = {"agi_network_script": "debt-call?x=1&name=%D0%98%D0%B2&flag=", "agi_request": "ignored"}
    assert p.route_from_env(env) == ("debt-call", {"x": "1", "name": "Ив", "flag": ""})
    assert p.route_from_env({"agi_request": "agi://10.0.0.1:4573/debt-call/?a=b"}) == ("debt-call", {"a": "b"})
    assert p.route_from_env({}) == ("", {})


# --- line splitting ---------------------------------------------------------------------------------
def test_line_splitter_any_chunking() -> None:
    data = "200 result=1 (Иванов)\r\nHANGUP\n200 result=0\n".encode()
    expected = ["200 result=1 (Иванов)", "HANGUP", "200 result=0"]
    for size in (1, 2, 3, 7, len(data)):
        s = p.LineSplitter()
        got = [line for i in range(0, len(data), size) for line in s.feed(data[i : i + size])]
        assert got == expected and s.pending == b""


def test_line_splitter_bad_utf8_and_overlong() -> None:
    assert p.LineSplitter().feed(b"200 result=1 (\xff)\n") == ["200 result=1 (\ufffd)"]
    s = p.LineSplitter(max_line=10)
    with pytest.raises(p.AGIProtocolError):
        s.feed(b"x" * 11)
