"""Channel creation, ringing, the outcome, and the Hangup events, in the recorded order
(ami-originate-*.txt, agi-calls-ami/*)."""

from __future__ import annotations

from ivr.sim.channel import Emit, SimCall
from ivr.sim.originate import OriginateRequest

CID_PRES = "0 (Presentation Allowed, Not Screened)"


def originate_response(
    emit: Emit, req: OriginateRequest, ok: bool, reason: int, channel: str, uniqueid: str
) -> None:
    rows = [("ActionID", req.action_id)] if req.action_id is not None else []
    rows += [
        ("Response", "Success" if ok else "Failure"),
        ("Channel", channel),
        ("Context", req.context),
        ("Exten", req.exten),
        ("Reason", str(reason)),
        ("Uniqueid", uniqueid),
        ("CallerIDNum", req.caller_num or "<unknown>"),
        ("CallerIDName", req.caller_name or "<unknown>"),
    ]
    emit("OriginateResponse", "call,all", rows)


async def dial(req: OriginateRequest, call: SimCall, async_: bool) -> bool:
    """Channel creation, ringing and the outcome, with the event order of the recordings."""
    one, two, callee = call.one, call.two, call.callee
    emit = call.emit_half
    emit("Newchannel", "call,all", one)
    emit("Newchannel", "call,all", two)
    emit(
        "Newexten",
        "dialplan,all",
        one,
        [("Extension", one.exten), ("Application", "AppDial2"), ("AppData", "(Outgoing Line)")],
    )
    for name, value in reversed(req.variables):
        call.set_plain(one, name, value)  # set as the VarSet goes out, as channelvars see it
    if req.caller_num:
        one.cid_num, one.cid_name = req.caller_num, req.caller_name
        emit("NewCallerid", "call,all", one, [("CID-CallingPres", CID_PRES)])
        one.conn_num, one.conn_name = req.caller_num, req.caller_name
        emit("NewConnectedLine", "call,all", one)
    for name, value in req.variables:
        call.set_plain(two, name, value)
    if req.caller_num:
        two.cid_num, two.cid_name = req.caller_num, req.caller_name
        two.conn_num, two.conn_name = req.caller_num, req.caller_name
        emit("NewCallerid", "call,all", two, [("CID-CallingPres", CID_PRES)])
        emit("NewConnectedLine", "call,all", two)
    failed_uid = "<unknown>"

    if callee.outcome == "failed":
        hung = await call.wait_hangup(callee.answer_after)
        call.emit_hangup(two, 0)
        call.record.reason = 1 if hung else 0
        if async_:
            originate_response(call.emit, req, False, call.record.reason, req.channel, failed_uid)
        call.emit_hangup(one, 0)
        call.record.hangup_cause = 0
        return False

    call.emit(
        "LocalBridge",
        "call,all",
        one.snapshot("LocalOne")
        + two.snapshot("LocalTwo")
        + [("Context", one.context), ("Exten", one.exten), ("LocalOptimization", "Yes")],
    )
    timeout = call.timeout_ms / 1000
    ring = callee.answer_after
    # An instant Busy() beats the dial events to OriginateResponse (ami-originate-busy.txt)
    instant_busy = callee.outcome == "busy" and ring == 0
    if instant_busy and async_:
        originate_response(call.emit, req, False, 5, req.channel, failed_uid)
    call.emit("DialBegin", "call,all", one.snapshot("Dest") + [("DialString", req.resource)])
    if callee.outcome in ("busy", "congestion") and ring < timeout:
        if await call.wait_hangup(ring):
            return _cancelled_while_ringing(req, call, async_)
        busy = callee.outcome == "busy"
        two.state = 7
        emit("Newstate", "call,all", two)
        call.emit(
            "DialEnd",
            "call,all",
            one.snapshot("Dest") + [("DialStatus", "BUSY" if busy else "CONGESTION")],
        )
        emit("HangupRequest", "call,all", two, [("Cause", "0")])
        emit("SoftHangupRequest", "call,all", two, [("Cause", "16")])
        call.record.reason = 5 if busy else 8
        if async_ and not instant_busy:
            originate_response(call.emit, req, False, call.record.reason, req.channel, failed_uid)
        call.emit_hangup(one, 0)
        call.emit_hangup(two, 17 if busy else 34)
        call.record.hangup_cause = 0
        return False

    answers = callee.answers and ring < timeout
    if ring > 0 or not answers:  # an instant answer never rings (ami-originate-success.txt)
        one.state = 5
        emit("Newstate", "call,all", one)
        call.emit("DialState", "call,all", one.snapshot("Dest") + [("DialStatus", "RINGING")])
    if await call.wait_hangup(ring if answers else timeout):
        return _cancelled_while_ringing(req, call, async_)
    if not answers:
        emit("HangupRequest", "call,all", two, [("Cause", "19")])
        call.record.reason = 3
        if async_:
            originate_response(call.emit, req, False, 3, req.channel, failed_uid)
        call.emit_hangup(one, 19)
        emit("SoftHangupRequest", "call,all", two, [("Cause", "16")])
        call.emit_hangup(two, 19)
        call.record.hangup_cause = 19
        return False

    two.state = one.state = 6
    emit("Newstate", "call,all", two)
    emit("Newstate", "call,all", one)
    call.emit("DialEnd", "call,all", one.snapshot("Dest") + [("DialStatus", "ANSWER")])
    call.record.answered_at = call.time.now()
    call.record.reason = 4
    one.context, one.exten, one.priority = req.context, req.exten, 1
    one.application, one.app_data = "Answer", ""
    two.application, two.app_data = "Wait", ""
    emit(
        "Newexten",
        "dialplan,all",
        one,
        [("Extension", one.exten), ("Application", "Answer"), ("AppData", "")],
    )
    if async_:
        originate_response(call.emit, req, True, 4, one.name, one.uniqueid)
    call.agent.on_answer()
    return True


def _cancelled_while_ringing(req: OriginateRequest, call: SimCall, async_: bool) -> bool:
    call.record.reason = 1
    if async_:
        originate_response(call.emit, req, False, 1, req.channel, "<unknown>")
    call.emit_hangup(call.one, call.hangup_cause)
    call.emit_hangup(call.two, 16)
    call.record.hangup_cause = call.hangup_cause
    return False


def finish(call: SimCall) -> None:
    """The Hangup events at the end of an answered call, per who ended it."""
    one, two = call.one, call.two
    emit = call.emit_half
    if not call.dead:
        one.application, one.app_data = "Hangup", ""
        emit("SoftHangupRequest", "call,all", one, [("Cause", "16")])
        emit("HangupRequest", "call,all", two, [("Cause", "16")])
        call.emit_hangup(one, 16)
        emit("SoftHangupRequest", "call,all", two, [("Cause", "16")])
        call.emit_hangup(two, 16)
        call.mark_dead("dialplan", 16)
        call.record.hangup_cause = 16
        return
    if call.hung_up_by == "script":
        emit("SoftHangupRequest", "call,all", one, [("Cause", "16")])
        emit("HangupRequest", "call,all", two, [("Cause", "0")])
        call.emit_hangup(one, 0)
        emit("SoftHangupRequest", "call,all", two, [("Cause", "16")])
        call.emit_hangup(two, 0)
        call.record.hangup_cause = 0
        return
    cause = call.hangup_cause if not two.gone else 16
    if not one.gone:
        emit("SoftHangupRequest", "call,all", one, [("Cause", "16")])
    call.emit_hangup(one, cause)
    if not two.gone:
        emit("SoftHangupRequest", "call,all", two, [("Cause", "16")])
        call.emit_hangup(two, 16)
    call.record.hangup_cause = cause
