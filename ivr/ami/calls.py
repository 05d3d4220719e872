"""Which live channels belong to which call, and when a call has ended (pure logic, no I/O).

A call is identified by its IVR_CALL_ID channel variable (our Originate ActionID). Asterisk tells
us which channels carry it:

* ``Event: VarSet`` with ``Variable: IVR_CALL_ID`` -- once per channel: the Originate variables
  are set on a Local channel's ``;1`` and copied to ``;2`` (two VarSet events), a PJSIP channel
  has one. In every recording both VarSets precede both Hangups.
* ``Event: OriginateResponse`` (Success) names the Uniqueid of the originated channel.
* ``Status`` replies after a reconnect (:meth:`CallTracker.carries` from find_calls).

A call ends when every channel known to carry it has hung up; exactly one CallEnded is produced
per call id, with the most informative cause among its channels (busy: ``;2`` says 17 while
``;1`` says 0). A channel counts as answered if its Hangup shows state Up (6) or the originate
succeeded. Ended call ids are remembered (bounded) so late or repeated events never produce a
second CallEnded.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from ivr import dialplan_vars
from ivr.ami import causes, protocol
from ivr.ami.types import CallEnded


@dataclass(frozen=True)
class _Hangup:
    uniqueid: str
    channel: str
    cause: int
    cause_txt: str


@dataclass
class _Call:
    call_id: str
    live: dict[str, str] = field(default_factory=dict)  # uniqueid -> channel
    gone: set[str] = field(default_factory=set)  # uniqueids that already hung up
    hangups: list[_Hangup] = field(default_factory=list)
    answered: bool = False
    agi_status: str | None = None


class CallTracker:
    def __init__(self, *, remember_ended: int = 10_000) -> None:
        self._calls: dict[str, _Call] = {}
        self._by_uniqueid: dict[str, str] = {}  # live uniqueid -> call id
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._remember_ended = remember_ended

    # --- what Asterisk told us -----------------------------------------------------------
    def carries(self, uniqueid: str, channel: str, call_id: str) -> None:
        """Channel ``uniqueid`` carries ``call_id`` (VarSet, OriginateResponse or Status)."""
        if not call_id or not uniqueid or call_id in self._ended:
            return
        call = self._calls.get(call_id)
        if call is None:
            call = self._calls[call_id] = _Call(call_id)
        if uniqueid in call.gone:
            return  # an OriginateResponse that arrived after the channel's Hangup
        call.live[uniqueid] = channel
        self._by_uniqueid[uniqueid] = call_id

    def answered(self, call_id: str) -> None:
        """The originate succeeded (Reason 4): the call was answered whatever its causes say."""
        call = self._calls.get(call_id)
        if call is not None:
            call.answered = True

    def variable(self, uniqueid: str, name: str, value: str) -> None:
        """Another variable set on one of our channels (AGISTATUS is kept for CallEnded)."""
        call_id = self._by_uniqueid.get(uniqueid)
        if call_id is not None and name == dialplan_vars.AGI_STATUS:
            self._calls[call_id].agi_status = value

    def hangup(self, uniqueid: str, channel: str, cause: int, cause_txt: str,
               state: int | None) -> CallEnded | None:
        """A channel hung up; returns the CallEnded when it was the call's last channel."""
        call_id = self._by_uniqueid.pop(uniqueid, None)
        if call_id is None:
            return None
        call = self._calls[call_id]
        call.live.pop(uniqueid, None)
        call.gone.add(uniqueid)
        call.hangups.append(_Hangup(uniqueid, channel, cause, cause_txt))
        if state == protocol.CHANNEL_STATE_UP:
            call.answered = True
        if call.live:
            return None
        return self._end(call)

    # --- bookkeeping -----------------------------------------------------------------------
    def is_tracked(self, uniqueid: str) -> bool:
        return uniqueid in self._by_uniqueid

    def call_ids(self) -> list[str]:
        """Calls with channels still believed live."""
        return list(self._calls)

    def forget(self, call_id: str) -> None:
        """Stop tracking a call (the dialer reconciled it otherwise); it will not end later."""
        call = self._calls.pop(call_id, None)
        if call is not None:
            for uniqueid in call.live:
                self._by_uniqueid.pop(uniqueid, None)
        self._remember(call_id)

    def _end(self, call: _Call) -> CallEnded:
        del self._calls[call.call_id]
        self._remember(call.call_id)
        # heaviest cause wins; max() keeps the first of equals, i.e. the earlier hangup
        best = max(call.hangups, key=lambda h: causes.cause_weight(h.cause))
        return CallEnded(
            call_id=call.call_id, uniqueid=best.uniqueid, channel=best.channel,
            cause=best.cause, cause_txt=best.cause_txt,
            result=causes.result_for_cause(best.cause, answered=call.answered),
            agi_status=call.agi_status,
        )

    def _remember(self, call_id: str) -> None:
        self._ended[call_id] = None
        self._ended.move_to_end(call_id)
        while len(self._ended) > self._remember_ended:
            self._ended.popitem(last=False)
