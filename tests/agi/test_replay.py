"""Every recorded FastAGI session replayed over loopback TCP against the real server.

The player is Asterisk: it sends the recorded ``<<`` bytes and requires the recorded ``>>`` bytes
exactly. The handler issues the same commands through the channel API and asserts the parsed
results. Where the channel deliberately behaves differently from the recorded test client (probe
after ``result=-1``; silence once hung up), the spliced replies come from the recordings too.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from ivr.agi.channel import AGIChannel, AGICommandError, AGIHangup, DigitResult
from tests.agi.conftest import Box, capture
from tests.agi.replay import Expect, Send, Step, Transcript, load, play

DEAD = "511 Command Not Permitted on a dead channel or intercept routine"


async def replay(agi_server, t: Transcript, handler, steps: list[Step] | None = None, *, full: bool = False) -> Box:  # type: ignore[no-untyped-def]
    box = Box()
    server = await agi_server({t.route: capture(handler, box)})
    result = await play(server.port, t.env_lines, t.steps if steps is None else steps)
    await server.stop(grace=2.0)
    box.check()
    if full:  # the whole session, byte for byte, in both directions
        assert len(result.client_bytes) == t.bytes_sent
        assert result.asterisk_bytes == t.bytes_received
    return box


# --- environment ---------------------------------------------------------------------------
async def test_env_block(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-env")

    async def handler(ch: AGIChannel) -> None:
        assert dict(ch.env) == t.env and len(ch.env) == 22
        assert ch.env["agi_accountcode"] == ""
        assert ch.env["agi_channel"] == "Local/s@debtor-sim-00000000;1"
        assert ch.args == [] and ch.script == "env" and ch.query == {}
        await ch.noop()

    await replay(agi_server, t, handler, full=True)


async def test_env_args_with_cyrillic_and_empty(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-env-args")

    async def handler(ch: AGIChannel) -> None:
        assert ch.args == ["first arg", "42", "", "Иванов И.И."]
        assert ch.script == "env-args"
        await ch.noop()

    await replay(agi_server, t, handler, full=True)


async def test_env_args_unquoted(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-env-args-unquoted")

    async def handler(ch: AGIChannel) -> None:
        assert ch.args == ["first arg"]
        await ch.noop()

    await replay(agi_server, t, handler, full=True)


# --- basic commands, errors, quoting ---------------------------------------------------------
async def test_basic_commands(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-basic-commands")

    async def usage_error(ch: AGIChannel, line: str) -> AGICommandError:
        with pytest.raises(AGICommandError) as info:
            await ch.run_command(line)
        assert info.value.code == 520
        return info.value

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert (await ch.run_command("CHANNEL STATUS")).result == "6"
        await ch.noop()
        await ch.verbose("hello from fastagi")
        await ch.run_command("VERBOSE unquoted words here 3")
        await ch.set_variable("LAB_A", "hello world")
        assert await ch.get_variable("LAB_A") == "hello world"
        await ch.set_variable("LAB_B", 'He said "pay 1800" today')
        assert await ch.get_variable("LAB_B") == 'He said "pay 1800" today'
        err = await usage_error(ch, "SET VARIABLE LAB_C it's a test")
        assert err.message == "Sets a variable to the current channel."
        assert await ch.get_variable("LAB_C") is None
        await usage_error(ch, "SET VARIABLE LAB_D 'single quoted'")
        assert await ch.get_variable("LAB_D") is None
        await ch.set_variable("LAB_E", "a (b) c")
        assert await ch.get_variable("LAB_E") == "a (b) c"
        await ch.set_variable("LAB_F", "Иванов Иван Иванович")
        assert await ch.get_variable("LAB_F") == "Иванов Иван Иванович"
        await ch.set_variable("LAB_G", "")
        assert await ch.get_variable("LAB_G") == ""
        await ch.set_variable("LAB_H", "back\\slash")
        assert await ch.get_variable("LAB_H") == "back\\slash"
        await ch.set_variable("LAB_I", "semi;colon,comma|pipe")
        assert await ch.get_variable("LAB_I") == "semi;colon,comma|pipe"
        assert await ch.get_variable("NO_SUCH_VARIABLE") is None
        assert await ch.get_variable("DIGITS") is None
        assert await ch.get_variable("CHANNEL(language)") == "en"
        assert await ch.get_full_variable("${LAB_B}") == 'He said "pay 1800" today'
        assert (await ch.get_full_variable("${CALLERID(num)} / ${CHANNEL(language)} / ${LAB_A}")
                == "79161234567 / en / hello world")
        assert await ch.get_full_variable("${NO_SUCH_VARIABLE}") == ""
        assert await ch.get_full_variable("${CHANNEL}") == "Local/s@debtor-sim-00000003;1"
        assert await ch.exec("Playback", "beep") == 0
        assert await ch.exec("Playback", "no-such-sound-file") == 0
        assert await ch.exec("Playback", "beep", "noanswer") == 0
        assert await ch.exec("NoSuchApplication", "foo") == -2
        assert await ch.exec("Set", "CHANNEL(language)=ru") == 0
        assert await ch.get_variable("CHANNEL(language)") == "ru"
        await ch.run_command("EXEC Set LAB_J=set via exec")  # the recorded unquoted mistake
        assert await ch.get_variable("LAB_J") == "set"
        assert await ch.exec("Verbose", "1", "verbose via exec") == 0
        for garbage in ("THIS IS GARBAGE", "xyzzy"):
            with pytest.raises(AGICommandError) as info:
                await ch.run_command(garbage)
            assert (info.value.code, info.value.message) == (510, "Invalid or unknown command")
        await ch.run_command("answer")
        err = await usage_error(ch, "STREAM FILE")
        assert "<variable>PLAYBACKSTATUS</variable>" in err.message
        assert err.message.splitlines()[-1] == "    <value>FAILED</value>"
        await usage_error(ch, "GET DATA")
        await usage_error(ch, 'SAY NUMBER abc ""')
        await usage_error(ch, "WAIT FOR DIGIT")
        await usage_error(ch, "SET VARIABLE ONLYNAME")
        # its usage text contains "200 result=1 (testvariable)": not a reply
        err = await usage_error(ch, "DATABASE GET")
        assert "Example return code: 200 result=1 (testvariable)" in err.message
        await usage_error(ch, "GET OPTION")
        # and the replies did not shift: one more round trip still pairs correctly
        assert ch.commands_sent == len(t.commands())

    await replay(agi_server, t, handler, full=True)


# --- STREAM FILE -------------------------------------------------------------------------------
async def test_stream_nodigit_and_missing_file(agi_server, transcripts: Path, caplog) -> None:
    t = load(transcripts, "agi-stream-nodigit")
    live_status = load(transcripts, "agi-basic-commands").reply_to("CHANNEL STATUS")
    assert live_status == ["200 result=6"]
    missing = 'STREAM FILE no-such-sound-file "12"'
    assert t.reply_to(missing) == ["200 result=-1 endpos=0"]
    # after the -1 the channel asks CHANNEL STATUS; Asterisk answers as on a live channel
    n = t.commands().index(missing) + 1
    steps = t.prefix(n) + [Expect("CHANNEL STATUS")] + [Send(x) for x in live_status] + t.steps[len(t.prefix(n)):]

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.stream_file("hello-world", "0123456789*#") is None
        assert await ch.stream_file("beep") is None
        assert await ch.stream_file("no-such-sound-file", "12") is None
        assert not ch.hung_up
        assert await ch.stream_file("hello-world", offset=4000) is None
        reply = await ch.run_command('CONTROL STREAM FILE hello-world "#"')
        assert (reply.result, reply.endpos) == ("0", -1)

    with caplog.at_level(logging.WARNING, logger="ivr.agi.channel"):
        await replay(agi_server, t, handler, steps)
    assert any("no-such-sound-file" in r.getMessage() for r in caplog.records)


async def test_stream_digit(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-stream-digit")

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.stream_file("demo-congrats", "0123456789*#") == "5"  # result=53
        assert await ch.stream_file("hello-world") is None

    await replay(agi_server, t, handler, full=True)


async def test_stream_digit_not_escape(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-stream-digit-not-escape")

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.stream_file("tt-monkeys", "12") is None
        assert await ch.wait_for_digit(1000) is None

    await replay(agi_server, t, handler, full=True)


# --- GET DATA ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "prompt", "timeout_ms", "max_digits", "expected"),
    [
        ("agi-getdata-digits", "beep", 5000, 4, DigitResult("1234", False)),
        ("agi-getdata-digits-local-n", "beep", 5000, 4, DigitResult("1234", False)),
        ("agi-getdata-hash", "beep", 5000, 10, DigitResult("12", False)),
        ("agi-getdata-timeout", "beep", 3000, 4, DigitResult("", True)),
        ("agi-getdata-partial-timeout", "beep", 3000, 4, DigitResult("7", True)),
        ("agi-getdata-during-prompt", "vm-enter-num-to-call", 5000, 3, DigitResult("42", True)),
        ("agi-getdata-hash-only", "beep", 4000, 4, DigitResult("", False)),
    ],
)
async def test_get_data(agi_server, transcripts: Path, name, prompt, timeout_ms, max_digits, expected) -> None:  # type: ignore[no-untyped-def]
    t = load(transcripts, name)

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.get_data(prompt, timeout_ms, max_digits) == expected

    await replay(agi_server, t, handler, full=True)


async def test_dtmf_at_answer(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-dtmf-at-answer")

    async def handler(ch: AGIChannel) -> None:
        assert await ch.get_data("beep", 3000, 2) == DigitResult("12", False)

    await replay(agi_server, t, handler, full=True)


async def test_dtmf_while_idle_is_lost(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-dtmf-while-idle")

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.wait_for_digit(2000) is None

    await replay(agi_server, t, handler, full=True)


# --- WAIT FOR DIGIT ----------------------------------------------------------------------------
async def test_wait_for_digit_then_hangup(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-waitdigit")
    dead = load(transcripts, "agi-hangup-getdata").reply_to("CHANNEL STATUS")
    assert dead == [DEAD]
    assert t.reply_to("WAIT FOR DIGIT -1") == ["200 result=-1"]
    # the recorded HANGUP notice (43 ms after the -1) lands after our probe was sent
    steps = t.prefix(5)
    assert steps[-1] == Send("HANGUP")
    steps = steps[:-1] + [Expect("CHANNEL STATUS"), Send("HANGUP")] + [Send(x) for x in dead] + t.ending()

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.wait_for_digit(5000) == "9"  # result=57
        assert await ch.wait_for_digit(5000) == "*"  # result=42
        assert await ch.wait_for_digit(1500) is None
        with pytest.raises(AGIHangup):
            await ch.wait_for_digit(-1)
        assert ch.hung_up
        with pytest.raises(AGIHangup):
            await ch.verbose("nothing is sent now")

    await replay(agi_server, t, handler, steps)


# --- SAY ---------------------------------------------------------------------------------------
async def test_say_ru(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-say-ru")

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.get_variable("CHANNEL(language)") == "en"
        await ch.run_command("SET VARIABLE CHANNEL(language) ru")  # recorded unquoted
        assert await ch.get_full_variable("${CHANNEL(language)}") == "ru"
        assert await ch.say_number(1800) is None
        assert await ch.say_number(1800, "", "f") is None
        assert await ch.say_number(21, "", "n") is None
        assert await ch.say_number(2500) is None
        assert await ch.say_digits("4815") is None
        assert await ch.stream_file("hello-world") is None
        assert await ch.exec("Set", "CHANNEL(language)=en") == 0
        assert await ch.say_number(1800) is None
        assert await ch.say_digits("4815") is None

    await replay(agi_server, t, handler, full=True)


async def test_say_interrupt(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-say-interrupt")

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        await ch.exec("Set", "CHANNEL(language)=ru")
        assert await ch.say_digits("9876543210", "#") == "#"  # result=35
        assert await ch.say_number(1800, "#") is None

    await replay(agi_server, t, handler, full=True)


# --- hang-ups ----------------------------------------------------------------------------------
def _probe_steps(t: Transcript, n_commands: int, dead_from: Transcript) -> list[Step]:
    """The first n commands as recorded, then the channel's CHANNEL STATUS probe answered with the
    notice and reply the recording shows right after the -1 (HANGUP between command and reply)."""
    after = t.received_after(t.commands()[n_commands])  # recorded: ["HANGUP", "200 result=0"]
    assert after[0] == "HANGUP"
    return (t.prefix(n_commands) + [Expect("CHANNEL STATUS"), Send("HANGUP")]
            + [Send(x) for x in dead_from.reply_to("CHANNEL STATUS")] + t.ending())


@pytest.mark.parametrize("name", ["agi-hangup-getdata", "agi-hangup-stream"])
async def test_hangup_during_media_probe(agi_server, transcripts: Path, name: str) -> None:
    t = load(transcripts, name)
    steps = _probe_steps(t, 2, t)

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        with pytest.raises(AGIHangup):
            if name == "agi-hangup-getdata":
                await ch.get_data("beep", 10000, 4)
            else:
                await ch.stream_file("demo-congrats", "0123456789*#")
        assert ch.hung_up
        # every later method raises without a byte on the wire (the player checks that)
        for call in (ch.get_variable("AGISIGHUP"), ch.stream_file("beep"), ch.get_data("beep", 1000, 1),
                     ch.wait_for_digit(100), ch.say_number(5), ch.verbose("after hangup"),
                     ch.set_variable("LAB_DEAD", "x"), ch.exec("Playback", "beep"), ch.noop(),
                     ch.answer(), ch.hangup()):
            with pytest.raises(AGIHangup):
                await call

    await replay(agi_server, t, handler, steps)


@pytest.mark.parametrize("name", ["agi-hangup-getdata", "agi-hangup-stream"])
async def test_hangup_notice_between_command_and_reply(agi_server, transcripts: Path, name: str) -> None:
    """The recorded bytes verbatim: ``-1``, the next command, ``HANGUP``, then that command's reply.
    The reply must go to the command that was sent, never shifted by the notice."""
    t = load(transcripts, name)
    first = t.commands()[1]
    steps = t.prefix(3) + t.ending()

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        reply = await ch.run_command(first)  # raw: no probe, so the recorded next command follows
        assert reply.result == "-1"
        assert not ch.hung_up
        assert await ch.get_variable("AGISIGHUP") is None  # its own `200 result=0`
        assert ch.hung_up  # the notice arrived in between
        with pytest.raises(AGIHangup):
            await ch.run_command("CHANNEL STATUS")

    await replay(agi_server, t, handler, steps)


async def test_hangup_while_idle(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-hangup-idle")
    steps = t.prefix(1) + t.ending()
    assert steps[-4:-3] == [Send("HANGUP")]  # recorded notice while the script was idle

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.wait_for_hangup(5.0)
        with pytest.raises(AGIHangup):
            await ch.get_variable("AGISIGHUP")

    await replay(agi_server, t, handler, steps)


@pytest.mark.parametrize("name", ["agi-hangup-idle", "ami-restart-gracefully-with-call.agi",
                                  "ami-restart-gracefully-with-call-2.agi"])
async def test_dead_channel_511_when_notice_not_yet_seen(agi_server, transcripts: Path, name: str) -> None:
    """Replay everything after the hang-up as recorded, minus the notice itself (the case where
    511 is the first sign): 511 must raise AGIHangup and stop all sending."""
    t = load(transcripts, name)
    cmds = t.commands()
    assert cmds[2] == "CHANNEL STATUS" and t.reply_to("CHANNEL STATUS") == [DEAD]
    steps = [s for s in t.prefix(3) if s != Send("HANGUP")] + t.ending()

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.get_variable("AGISIGHUP") is None
        with pytest.raises(AGIHangup):
            await ch.run_command("CHANNEL STATUS")
        assert ch.hung_up
        with pytest.raises(AGIHangup):
            await ch.stream_file("beep")

    await replay(agi_server, t, handler, steps)


async def test_script_hangup(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "agi-script-hangup")
    steps = t.prefix(3) + t.ending()
    assert Send("HANGUP") in steps[:-3]

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.stream_file("beep") is None
        await ch.hangup()
        assert ch.hung_up
        with pytest.raises(AGIHangup):
            await ch.stream_file("beep")

    await replay(agi_server, t, handler, steps)


# --- sessions recorded alongside AMI / call files --------------------------------------------
async def test_originate_success_session(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "ami-originate-success.agi")

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.stream_file("beep") is None
        assert await ch.get_data("beep", 4000, 2) == DigitResult("12", False)
        await ch.set_variable("PAYMENT_CHOICE", "1")
        await ch.hangup()

    await replay(agi_server, t, handler, full=True)


async def test_callfile_session_quoted_value(agi_server, transcripts: Path) -> None:
    t = load(transcripts, "callfile-success.agi")

    async def handler(ch: AGIChannel) -> None:
        await ch.answer()
        assert await ch.get_variable("CALLFILE_TAG") == 'debt-42 "quoted" value'
        assert await ch.get_data("beep", 4000, 1) == DigitResult("3", False)
        await ch.verbose("call file robot done")

    await replay(agi_server, t, handler, full=True)


def test_every_agi_transcript_is_covered(transcripts: Path) -> None:
    covered = {
        "agi-env", "agi-env-args", "agi-env-args-unquoted", "agi-basic-commands", "agi-stream-nodigit",
        "agi-stream-digit", "agi-stream-digit-not-escape", "agi-getdata-digits",
        "agi-getdata-digits-local-n", "agi-getdata-hash", "agi-getdata-timeout",
        "agi-getdata-partial-timeout", "agi-getdata-during-prompt", "agi-getdata-hash-only",
        "agi-dtmf-at-answer", "agi-dtmf-while-idle", "agi-waitdigit", "agi-say-ru", "agi-say-interrupt",
        "agi-hangup-getdata", "agi-hangup-stream", "agi-hangup-idle", "agi-script-hangup",
    }
    assert {p.stem for p in transcripts.glob("agi-*.txt")} == covered
