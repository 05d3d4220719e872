"""FastAGI wire text of Asterisk 22: the environment block, argument parsing, fixed replies and
the usage blocks of `520` answers. Texts marked (recorded) are byte-exact from
agi-basic-commands.txt; the others follow res_agi's documentation and were not recorded."""

from __future__ import annotations

from collections.abc import Sequence

AGI_VERSION = "22.10.1"
# The robot context's AGI() runs at this priority in the shipped dialplan
# (1 Answer, 2 AMD when IVR_AMD=1, 3 AGI, 4 Hangup)
AGI_PRIORITY = 3


class ShowUsage(Exception):
    """A command's arguments are wrong: answer with the 520 usage block."""


R_INVALID = "510 Invalid or unknown command"
R_DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
USAGE_HEAD = "520-Invalid command syntax.  Proper usage follows:"
USAGE_TAIL = "520 End of proper usage."

_PLAY_RESULT = (
    "Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
    "ASCII numerical value of the digit if one was pressed, or <literal>-1</literal> on error or "
    "if the channel was disconnected."
)
_SAY_RESULT = (
    "Returns <literal>0</literal> if playback completes without a digit being pressed, or the "
    "ASCII numerical value of the digit if one was pressed or <literal>-1</literal> on error/hangup."
)

USAGE: dict[tuple[str, ...], str] = {
    (
        "answer",
    ): "Answers channel if not already in answer state. Returns <literal>-1</literal> on channel failure, or <literal>0</literal> if successful.",
    ("channel", "status"): (
        "Returns the status of the specified <replaceable>channelname</replaceable>. If no channel "
        "name is given then returns the status of the current channel."
    ),
    ("control", "stream", "file"): (
        "Send the given file, allowing playback to be controlled by the given digits, if any. Use "
        "double quotes for the digits if you wish none to be permitted. If offsetms is provided then "
        "playback will start at offsetms into the file. " + _PLAY_RESULT
    ),
    ("database", "del"): (
        "Deletes an entry in the Asterisk database for a given <replaceable>family</replaceable> "
        "and <replaceable>key</replaceable>.\nReturns <literal>1</literal> if successful, "
        "<literal>0</literal> otherwise."
    ),
    ("database", "deltree"): (
        "Deletes a <replaceable>family</replaceable> or specific <replaceable>keytree</replaceable> "
        "within a <replaceable>family</replaceable> in the Asterisk database.\nReturns "
        "<literal>1</literal> if successful, <literal>0</literal> otherwise."
    ),
    ("database", "get"): (  # (recorded)
        "Retrieves an entry in the Asterisk database for a given <replaceable>family</replaceable> "
        "and <replaceable>key</replaceable>.\nReturns <literal>0</literal> if <replaceable>key</replaceable> "
        "is not set. Returns <literal>1</literal> if <replaceable>key</replaceable> is set and returns "
        "the variable in parenthesis.\nExample return code: 200 result=1 (testvariable)"
    ),
    ("database", "put"): (
        "Adds or updates an entry in the Asterisk database for a given <replaceable>family</replaceable>, "
        "<replaceable>key</replaceable>, and <replaceable>value</replaceable>.\nReturns "
        "<literal>1</literal> if successful, <literal>0</literal> otherwise."
    ),
    ("exec",): (
        "Executes <replaceable>application</replaceable> with given <replaceable>options</replaceable>.\n"
        "Returns whatever the <replaceable>application</replaceable> returns, or <literal>-2</literal> "
        "on failure to find <replaceable>application</replaceable>."
    ),
    ("get", "data"): (  # (recorded)
        "Stream the given <replaceable>file</replaceable>, and receive DTMF data.\n"
        "Returns the digits received from the channel at the other end."
    ),
    ("get", "full", "variable"): (
        "Evaluates the given <replaceable>expression</replaceable> against the channel specified by "
        "<replaceable>variablename</replaceable>, or the current channel if "
        "<replaceable>channelname</replaceable> is not set. Unlike GET VARIABLE, the "
        "<replaceable>expression</replaceable> is processed in a manner similar to dialplan "
        "evaluation, allowing complex and built-in variables to be accessed, e.g. <literal>The time "
        "is ${EPOCH}</literal>\nReturns <literal>0</literal> if no channel matching "
        "<replaceable>channelname</replaceable> exists, <literal>1</literal> otherwise.\n"
        "Example return code: 200 result=1 (The time is 1578493800)"
    ),
    (
        "get",
        "option",
    ): "Behaves similar to STREAM FILE but used with a timeout option.",  # (recorded)
    ("get", "variable"): (
        "Returns <literal>0</literal> if <replaceable>variablename</replaceable> is not set. Returns "
        "<literal>1</literal> if <replaceable>variablename</replaceable> is set and returns the "
        "variable in parentheses.\nExample return code: 200 result=1 (testvariable)"
    ),
    (
        "hangup",
    ): "Hangs up the specified channel. If no channel name is given, hangs up the current channel",
    ("record", "file"): (
        "Record to a file until a given dtmf digit in the sequence is received. Returns "
        "<literal>-1</literal> on hangup or error.  The format will specify what kind of file will "
        "be recorded. The <replaceable>timeout</replaceable> is the maximum record time in "
        "milliseconds, or <literal>-1</literal> for no <replaceable>timeout</replaceable>."
    ),
    ("say", "alpha"): (
        "Say a given character string, returning early if any of the given DTMF digits are received "
        "on the channel. " + _SAY_RESULT
    ),
    ("say", "date"): (
        "Say a given date, returning early if any of the given DTMF digits are received on the "
        "channel. " + _SAY_RESULT
    ),
    ("say", "datetime"): (
        "Say a given time, returning early if any of the given DTMF digits are received on the "
        "channel. " + _SAY_RESULT
    ),
    ("say", "digits"): (
        "Say a given digit string, returning early if any of the given DTMF digits are received on "
        "the channel. " + _SAY_RESULT
    ),
    ("say", "number"): (  # (recorded)
        "Say a given number, returning early if any of the given DTMF digits are received on the "
        "channel.  " + _SAY_RESULT
    ),
    ("say", "phonetic"): (
        "Say a given character string with phonetics, returning early if any of the given DTMF "
        "digits are received on the channel. " + _SAY_RESULT
    ),
    ("say", "time"): (
        "Say a given time, returning early if any of the given DTMF digits are received on the "
        "channel. " + _SAY_RESULT
    ),
    ("set", "autohangup"): (
        "Cause the channel to automatically hangup at <replaceable>time</replaceable> seconds in the "
        "future. Of course it can be hungup before then as well. Setting to <literal>0</literal> will "
        "cause the autohangup feature to be disabled on this channel."
    ),
    ("set", "callerid"): "Changes the callerid of the current channel.",
    ("set", "context"): "Sets the context for continuation upon exiting the application.",
    ("set", "extension"): "Changes the extension for continuation upon exiting the application.",
    ("set", "music"): (
        "Enables/Disables the music on hold generator. If <replaceable>class</replaceable> is not "
        "specified, then the <literal>default</literal> music on hold class will be used. This "
        "generator will be stopped automatically when playing a file.\nAlways returns "
        "<literal>0</literal>."
    ),
    ("set", "priority"): (
        "Changes the priority for continuation upon exiting the application. The priority must be a "
        "valid priority or label."
    ),
    ("set", "variable"): "Sets a variable to the current channel.",  # (recorded)
    ("stream", "file"): (  # (recorded)
        "Send the given file, allowing playback to be interrupted by the given digits, if any. "
        + _PLAY_RESULT
        + " If musiconhold is playing before calling stream file it will be automatically stopped "
        "and will not be restarted after completion.\n"
        "It sets the following channel variables upon completion:\n"
        "<variable>PLAYBACKSTATUS</variable>: The status of the playback attempt as a text string.\n"
        "    <value>SUCCESS</value>\n"
        "    <value>FAILED</value>"
    ),
    ("verbose",): (
        "Sends <replaceable>message</replaceable> to the console via verbose message system. "
        "<replaceable>level</replaceable> is the verbose level (1-4). Always returns <literal>1</literal>"
    ),
    ("wait", "for", "digit"): (  # (recorded)
        "Waits up to <replaceable>timeout</replaceable> milliseconds for channel to receive a DTMF "
        "digit. Returns <literal>-1</literal> on channel failure, <literal>0</literal> if no digit is "
        "received in the timeout, or the numerical value of the ascii of the digit if one is "
        "received. Use <literal>-1</literal> for the <replaceable>timeout</replaceable> value if you "
        "desire the call to block indefinitely."
    ),
    ("noop",): "Does nothing.",
}

# res_agi's command table: which commands still run once the channel is gone
DEAD_OK = frozenset(
    {
        ("database", "del"),
        ("database", "deltree"),
        ("database", "get"),
        ("database", "put"),
        ("exec",),
        ("get", "full", "variable"),
        ("get", "variable"),
        ("noop",),
        ("set", "variable"),
        ("verbose",),
    }
)


def find_command(argv: Sequence[str]) -> tuple[str, ...] | None:
    """The longest known command whose words start `argv` (case-insensitive)."""
    words = [a.lower() for a in argv]
    best: tuple[str, ...] | None = None
    for cmd in USAGE:
        if len(cmd) <= len(words) and tuple(words[: len(cmd)]) == cmd:
            if best is None or len(cmd) > len(best):
                best = cmd
    return best


def parse_args(line: str) -> list[str]:
    """res_agi's parse_args(): split at blanks outside double quotes; quotes start a word (even an
    empty one) and are dropped; a backslash makes the next character literal."""
    argv: list[str] = []
    cur: list[str] | None = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            if quoted and cur is None:
                cur = []
                argv.append("")
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                argv[-1] = "".join(cur)
            cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        if cur is None:
            cur = []
            argv.append("")
        cur.append(ch)
        escaped = False
    if cur is not None:
        argv[-1] = "".join(cur)
    return argv


def scan_int(text: str) -> int | None:
    """C sscanf("%30d"): optional blanks and sign, then at least one digit; trailing junk ignored."""
    s = text.lstrip()
    i = 0
    if i < len(s) and s[i] in "+-":
        i += 1
    start = i
    while i < len(s) and s[i].isdigit():
        i += 1
    if i == start:
        return None
    return int(s[:i])


def atoi(text: str) -> int:
    value = scan_int(text)
    return 0 if value is None else value


def env_block(
    *,
    script: str,
    request: str,
    channel: str,
    language: str,
    uniqueid: str,
    callerid: str,
    calleridname: str,
    context: str,
    extension: str,
    threadid: int,
    args: Sequence[str],
    agi_type: str = "Local",
) -> str:
    """The agi_ block in the recorded key order (agi-env.txt), then agi_arg_N, then a blank line."""
    rows = [
        ("agi_network", "yes"),
        ("agi_network_script", script),
        ("agi_request", request),
        ("agi_channel", channel),
        ("agi_language", language),
        ("agi_type", agi_type),
        ("agi_uniqueid", uniqueid),
        ("agi_version", AGI_VERSION),
        ("agi_callerid", callerid or "unknown"),
        ("agi_calleridname", calleridname or "unknown"),
        ("agi_callingpres", "0"),
        ("agi_callingani2", "0"),
        ("agi_callington", "0"),
        ("agi_callingtns", "0"),
        ("agi_dnid", "unknown"),
        ("agi_rdnis", "unknown"),
        ("agi_context", context),
        ("agi_extension", extension),
        ("agi_priority", str(AGI_PRIORITY)),
        ("agi_enhanced", "0.0"),
        ("agi_accountcode", ""),
        ("agi_threadid", str(threadid)),
    ]
    rows += [(f"agi_arg_{i}", a) for i, a in enumerate(args, start=1)]
    return "".join(f"{k}: {v}\n" for k, v in rows) + "\n"
