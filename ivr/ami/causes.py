"""Asterisk outcomes → attempt results (answered | busy | no_answer | congestion | failed).

Two sources, both pure functions of their inputs:

* ``Reason`` of ``Event: OriginateResponse``: the last control frame the outgoing channel saw
  (Asterisk's ``enum ast_control_frame_type``). Recorded: 4 answered, 5 busy, 3 no answer
  (Timeout expired while ringing), 8 congestion, 0 failed (unknown technology, missing extension).
* ``Cause`` of ``Event: Hangup``: an ITU-T Q.850 cause value (Asterisk's causes.h). Recorded:
  16 Normal Clearing, 0 Unknown (AGI ``HANGUP``, or the ``;1`` half of a failed Local call),
  17 User busy, 19 User alerting no answer, 34 Circuit/channel congestion.

Whether a call was answered is not a cause: once a channel reached state Up, any cause is the
normal end of an answered call. Only unanswered calls are classified by their cause.
"""

from __future__ import annotations

# AttemptResult values (ivr.db.models.AttemptResult; a test keeps the two in step without making
# the AMI layer import the database layer)
ANSWERED = "answered"
BUSY = "busy"
NO_ANSWER = "no_answer"
CONGESTION = "congestion"
FAILED = "failed"

# --- Originate Reason (enum ast_control_frame_type) ------------------------------------------
REASON_FAILED = 0  # no control frame: the channel could not be created or called
REASON_HANGUP = 1  # AST_CONTROL_HANGUP: the far end went away before answering
REASON_RING = 2  # AST_CONTROL_RING
REASON_RINGING = 3  # AST_CONTROL_RINGING: rang until our Timeout
REASON_ANSWER = 4  # AST_CONTROL_ANSWER
REASON_BUSY = 5  # AST_CONTROL_BUSY
REASON_CONGESTION = 8  # AST_CONTROL_CONGESTION

_REASONS: dict[int, str] = {
    REASON_ANSWER: ANSWERED,
    REASON_BUSY: BUSY,
    REASON_RINGING: NO_ANSWER,
    REASON_RING: NO_ANSWER,
    # A hang-up before answer carries no reason of its own; the Hangup cause (CallEnded) says
    # more. As a reason alone it is "the subscriber did not take the call".
    REASON_HANGUP: NO_ANSWER,
    REASON_CONGESTION: CONGESTION,
    REASON_FAILED: FAILED,
}


def result_for_reason(reason: int) -> str:
    """Attempt result of an ``OriginateResponse`` Reason; unknown reasons are failures."""
    return _REASONS.get(reason, FAILED)


# --- Hangup Cause (Q.850) --------------------------------------------------------------------
CAUSE_UNKNOWN = 0  # AST_CAUSE_NOTDEFINED
CAUSE_NORMAL_CLEARING = 16
CAUSE_USER_BUSY = 17
CAUSE_NO_USER_RESPONSE = 18
CAUSE_NO_ANSWER = 19
CAUSE_SUBSCRIBER_ABSENT = 20
CAUSE_CALL_REJECTED = 21
CAUSE_RESPONSE_TO_STATUS_ENQUIRY = 30
CAUSE_NORMAL_UNSPECIFIED = 31
CAUSE_RECOVERY_ON_TIMER_EXPIRE = 102

# "Normal" ends: they say nothing about why an unanswered call failed.
NORMAL_CAUSES = frozenset({CAUSE_UNKNOWN, CAUSE_NORMAL_CLEARING, CAUSE_RESPONSE_TO_STATUS_ENQUIRY,
                           CAUSE_NORMAL_UNSPECIFIED})

_CAUSES: dict[int, str] = {
    CAUSE_USER_BUSY: BUSY,
    # the subscriber declined the call (SIP 603): like busy, a person is there, try later
    CAUSE_CALL_REJECTED: BUSY,
    CAUSE_NO_USER_RESPONSE: NO_ANSWER,
    CAUSE_NO_ANSWER: NO_ANSWER,
    # handset switched off or out of coverage: nobody could answer, try later
    CAUSE_SUBSCRIBER_ABSENT: NO_ANSWER,
    # the network's own timer ran out (SIP 408 on some trunks): transient, like congestion
    CAUSE_RECOVERY_ON_TIMER_EXPIRE: CONGESTION,
}
# Q.850 class "resource unavailable" (34 no circuit, 38 network out of order, 41 temporary
# failure, 42 switching equipment congestion, 44 requested channel unavailable, 47 ...)
for _cause in range(34, 48):
    _CAUSES[_cause] = CONGESTION
_CAUSES[6] = CONGESTION  # channel unacceptable
_CAUSES[8] = CONGESTION  # pre-empted
# Everything else (1 unallocated number, 3 no route, 22 number changed, 27 destination out of
# order, 28 invalid number format, the service, protocol and interworking classes) is FAILED.


def result_for_cause(cause: int, *, answered: bool) -> str:
    """Attempt result of a Hangup cause; an answered call is ``answered`` whatever its cause."""
    if answered:
        return ANSWERED
    return _CAUSES.get(cause, FAILED)


def cause_weight(cause: int) -> int:
    """How much a cause tells about the call: 0 unknown, 1 normal clearing, 2 anything else.

    A Local channel hangs up twice, and one half often says less: busy gives 17 on ``;2`` but 0
    on ``;1``. The heavier cause describes the call.
    """
    if cause == CAUSE_UNKNOWN:
        return 0
    if cause in NORMAL_CAUSES:
        return 1
    return 2
