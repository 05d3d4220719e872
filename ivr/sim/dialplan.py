"""What ;1 runs once answered: the robot context (AMD, AGI), the operator context, or an
Application originate."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ivr import dialplan_vars as dv
from ivr.sim.agi_peer import AgiPeer, thread_id
from ivr.sim.channel import SimCall
from ivr.sim.dial import finish
from ivr.sim.originate import OriginateRequest, separate_args
from ivr.sim.sounds import SoundLibrary

log = logging.getLogger(__name__)


@dataclass
class Dialplan:
    """The shipped dialplan, simulated: see ivr.sim.asterisk for the contexts."""

    sounds: SoundLibrary
    amd_seconds: float
    operator_call_seconds: float
    agi_events: bool = False
    db: dict[tuple[str, str], str] = field(default_factory=dict)  # astdb for DATABASE commands

    async def run(self, req: OriginateRequest, call: SimCall) -> None:
        """Run ;1's dialplan, then the Hangup events (dial.finish)."""
        one = call.one
        if req.application:
            one.application, one.app_data = req.application, req.data
            seconds = (
                self.sounds.duration(req.data.split(",")[0])
                if req.application.lower() == "playback"
                else 0.0
            )
            await call.wait_hangup(seconds or 0.0)
        elif req.context == dv.CONTEXT_OPERATOR:
            target = one.variables.get(dv.OPERATOR_TARGET, "")
            one.priority = 2
            one.application, one.app_data = "Dial", target
            call.emit_half(
                "Newexten",
                "dialplan,all",
                one,
                [("Extension", one.exten), ("Application", "Dial"), ("AppData", target)],
            )
            await call.wait_hangup(self.operator_call_seconds)
        elif req.context:
            await self._robot(call)
        finish(call)

    async def _robot(self, call: SimCall) -> None:
        one, record = call.one, call.record
        if one.variables.get(dv.AMD_ENABLED) == "1":
            one.priority = 2
            one.application, one.app_data = "AMD", ""
            call.emit_half(
                "Newexten",
                "dialplan,all",
                one,
                [("Extension", one.exten), ("Application", "AMD"), ("AppData", "")],
            )
            if await call.wait_hangup(self.amd_seconds):
                status, cause = "HANGUP", "HANGUP-0"
            elif call.callee.outcome == "machine":
                status, cause = "MACHINE", "LONGGREETING-1500-1500"
            else:
                status, cause = "HUMAN", "HUMAN-300-800"
            record.amd_status = status
            call.set_plain(one, dv.AMD_STATUS, status)
            call.set_plain(one, dv.AMD_CAUSE, cause)
            if call.dead:
                return  # the dialplan stops at a hang-up; AGI never starts
        base = one.variables.get(dv.AGI_URL, "")
        script = one.variables.get(dv.SCRIPT, "")
        app_data = f"{base}/{script},{one.variables.get(dv.CALL_ID, '')}"
        parts = separate_args(app_data)
        url, args = parts[0], parts[1:]
        one.priority = 3
        one.application, one.app_data = "AGI", app_data
        call.emit_half(
            "Newexten",
            "dialplan,all",
            one,
            [("Extension", one.exten), ("Application", "AGI"), ("AppData", app_data)],
        )
        record.agi_route = script
        if not url.startswith("agi://"):
            log.warning("sim: %s is not an agi:// URL; AGI fails", url)
            status = "FAILURE"
        else:
            peer = AgiPeer(
                call,
                self.sounds,
                url,
                args,
                thread_id(int(one.uniqueid.rpartition(".")[2] or 0)),
                agi_events=self.agi_events,
                db=self.db,
            )
            status = await peer.run()
        record.agi_status = status
        call.set_plain(one, "AGISTATUS", status)
        one.priority = 4
