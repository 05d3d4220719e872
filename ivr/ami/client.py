"""Asterisk Manager Interface client: asyncio, replies matched by ActionID, reconnects by itself.

Why not pyst2's ``asterisk.manager``: it runs a reader thread per connection and delivers
events on threads, it matches replies to actions by arrival order rather than by ActionID (so an
event or another reply arriving in between is taken for the answer), it has no keep-alive, and a
dropped connection stays dropped. A dialer that must never place a call twice needs the
opposite: every reply tied to its own ActionID, a dead connection noticed within seconds,
reconnection with back-off through ``core restart now`` and ``core restart gracefully``, and a
clear account of every Originate whose fate is unknown. Nothing of pyst2 is reused.

Behaviour (each point is replayed against the recordings in shared/asterisk-transcripts/):

* ``start()`` connects in the background and logs in; a refused login (``Authentication
  failed``, which Asterisk sends after about 1 s and then closes) is logged without the secret,
  kept in ``last_error``, and retried with exponential back-off (reconnect_min..reconnect_max,
  jittered), never in a tight loop. The same back-off applies to refused connections.
* Keep-alive: a Ping every ``ping_interval``; no reply within ``ping_timeout`` means the
  connection is dead: it is closed and reconnected. An Error reply (``Asterisk is shutting
  down`` during a graceful restart) still proves the connection alive.
* ``originate()`` returns once Asterisk says ``Originate successfully queued``; the outcome comes
  later as ``on_originate_result`` (Event: OriginateResponse, same ActionID), and the end of the
  call as exactly one ``on_call_ended`` per call id (Event: Hangup of the channels carrying the
  IVR_CALL_ID variable; see :mod:`ivr.ami.calls`).
* An Originate is never sent twice by this client. If the connection drops (or the reply times
  out) after it was written and before the "queued" reply, ``originate()`` raises
  :class:`OriginateUnknown` and its ActionID is passed to ``on_lost_originates`` exactly once.

Reconciliation, for the dialer. Asterisk does not replay events to a new session, so after
``on_connection_change(False)`` the fate of these attempts is unknown:
  - ActionIDs given to ``on_lost_originates`` (Asterisk may or may not have queued them; if
    only the reply timed out and the connection lived on, their OriginateResult may still come);
  - attempts whose ``originate()`` returned but whose OriginateResult or CallEnded has not come.
After the next ``on_connection_change(True)`` call ``find_calls()``: every live channel carrying
IVR_CALL_ID is listed (and tracked again, so its Hangup still produces a CallEnded). An
attempt whose call id is among them is in progress; one that is absent has ended or never
started -- decide from the database (the FastAGI side records what the call did), never by
originating it again under the same ActionID. ``forget(call_id)`` drops tracking for an attempt
settled that way.

Events: Login sends no ``Events``/``EventMask`` header (no recording shows one), so Asterisk
sends every event the manager user may read; the client keeps OriginateResponse, Hangup, VarSet
(IVR_CALL_ID, AGISTATUS), Shutdown and FullyBooted, and drops the rest by their first line
without decoding them. The manager user needs read ``call,dialplan,system`` and write
``originate,call`` (``Status`` for find_calls is a call/system/reporting action).

Callbacks are plain attributes, sync functions or coroutine functions; they run one at a time
in arrival order on a separate task, so a slow callback never stalls reading or keep-alive.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import logging
import os
import random
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

from ivr import dialplan_vars
from ivr.ami import causes
from ivr.ami import protocol as p
from ivr.ami.calls import CallTracker
from ivr.ami.connection import (
    AMIConnection,
    AMIError,
    AMINotConnected,
    AMIShuttingDown,
    AMITimeout,
    Reply,
)
from ivr.ami.types import CallEnded, ChannelInfo, OriginateRequest, OriginateResult
from ivr.logsetup import mask_phones_in

__all__ = [
    "AMIAuthError", "AMIClient", "AMIError", "AMINotConnected", "AMIShuttingDown", "AMITimeout",
    "OriginateUnknown", "backoff_delay",
]

log = logging.getLogger(__name__)

_LOGIN_GRACE = 3.0  # Asterisk answers a bad login only after ~1 s (ami-login-wrong-secret)
_LOGOFF_TIMEOUT = 1.0
_CALLBACK_DRAIN = 2.0
_CALL_ID_VARSET = f"\r\n{p.VARIABLE}: {dialplan_vars.CALL_ID}\r\n".encode()
_AGI_STATUS_VARSET = f"\r\n{p.VARIABLE}: {dialplan_vars.AGI_STATUS}\r\n".encode()


class AMIAuthError(AMIError):
    """Login refused (``Authentication failed``): wrong user or secret, or an ACL."""


class OriginateUnknown(AMIError):
    """The Originate was written but its reply never came: Asterisk may have queued it.

    Never retry it under the same ActionID; reconcile it (see the module docstring).
    """

    def __init__(self, action_id: str, why: str) -> None:
        super().__init__(f"outcome of originate {action_id} unknown: {why}", action=p.ORIGINATE)
        self.action_id = action_id


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Delay before reconnect attempt ``attempt`` (0-based): doubling from ``low``, capped at
    ``high``, with ±20 % jitter (never below ``low``) so many dialers do not reconnect in step."""
    base = min(high, low * (2 ** min(attempt, 30)))
    return max(low, min(high, base * rng.uniform(0.8, 1.2)))


Callback = Callable[[Any], Any]


class AMIClient:
    def __init__(self, host: str, port: int, username: str, secret: str, *, name: str = "asterisk",
                 ping_interval: float = 20.0, ping_timeout: float = 5.0,
                 reconnect_min: float = 0.5, reconnect_max: float = 30.0,
                 connect_timeout: float = 5.0, action_timeout: float = 10.0) -> None:
        if reconnect_min <= 0 or reconnect_max < reconnect_min:
            raise ValueError("need 0 < reconnect_min <= reconnect_max")
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret  # never logged, never in an exception text
        self.name = name
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.connect_timeout = connect_timeout
        self.action_timeout = action_timeout

        self.on_originate_result: Callable[[OriginateResult], Any] | None = None
        self.on_call_ended: Callable[[CallEnded], Any] | None = None
        self.on_connection_change: Callable[[bool], Any] | None = None
        self.on_lost_originates: Callable[[list[str]], Any] | None = None

        self.connected = False
        # wall-clock time of the last change of `connected` (for `ivr status`: "down since")
        self.state_since = dt.datetime.now(dt.UTC)
        self.shutting_down = False  # Asterisk announced a shutdown / answers "shutting down"
        self.last_error: str | None = None  # why the last connect or login failed (no secret)
        self.auth_failed = False  # the last login was refused (wrong user or secret)
        self.banner: str | None = None
        # Asterisk restarts seen since start (issue 15): FullyBooted's Uptime went back, or a
        # "Shutdown ... Restart: True" came before the connection closed. The dialer compares
        # this count between reconciliations: calls of before a restart are gone.
        self.restarts = 0
        self._booted_at: float | None = None  # monotonic time of Asterisk's start, from Uptime
        self._restart_announced = False

        self._conn: AMIConnection | None = None
        self._tracker = CallTracker()
        self._in_flight: set[str] = set()  # Originate written, "queued" reply not yet seen
        self._awaiting_result: set[str] = set()  # our originates whose OriginateResponse is due
        self._connected_evt = asyncio.Event()
        self._callbacks: asyncio.Queue[tuple[Callback, Any]] = asyncio.Queue()
        self._supervisor: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._stopping = False
        self._rng = random.Random()
        self._id_prefix = f"{name}-{os.getpid()}-{secrets.token_hex(3)}"
        self._sessions = 0

    def __repr__(self) -> str:
        return f"<AMIClient {self.name} {self.username}@{self.host}:{self.port} connected={self.connected}>"

    # --- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start connecting in the background (with back-off); returns at once."""
        if self._supervisor is not None:
            return
        self._stopping = False
        self._consumer = asyncio.create_task(self._run_callbacks(), name=f"ami-callbacks-{self.name}")
        self._supervisor = asyncio.create_task(self._supervise(), name=f"ami-{self.name}")

    async def wait_connected(self, timeout: float) -> bool:
        """True once logged in; False if that did not happen within ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._connected_evt.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Log off when possible, close, stop reconnecting, run the callbacks already due."""
        self._stopping = True
        conn = self._conn
        if conn is not None and self.connected:
            try:
                await conn.request(p.LOGOFF, timeout=min(_LOGOFF_TIMEOUT, self.action_timeout))
            except AMIError as exc:
                log.debug("AMI %s: Logoff: %s", self.name, exc)
        if conn is not None:
            conn.abort()
        if self._supervisor is not None:
            # it may be sleeping a back-off step or in the middle of a login: no need to wait
            self._supervisor.cancel()
            try:
                await self._supervisor
            except asyncio.CancelledError:
                pass
            self._supervisor = None
        if self._in_flight:  # stop() while an Originate awaited its reply
            self._report_lost(sorted(self._in_flight))
        if self._consumer is not None:
            try:
                await asyncio.wait_for(self._callbacks.join(), _CALLBACK_DRAIN)
            except TimeoutError:
                log.warning("AMI %s: callbacks still running at stop; cancelled", self.name)
            self._consumer.cancel()
            try:
                await self._consumer
            except asyncio.CancelledError:
                pass
            self._consumer = None

    # --- actions -------------------------------------------------------------------------
    async def action(self, action: str, headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
                     *, timeout: float | None = None) -> dict[str, str]:
        """Send any action with our own ActionID; returns the reply's headers.

        Raises AMIError on ``Response: Error`` (AMIShuttingDown for "Asterisk is shutting
        down"), AMITimeout, AMINotConnected, or InvalidHeader before sending anything.
        """
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        if any(name.lower() == p.ACTION_ID.lower() for name, _ in pairs):
            raise p.InvalidHeader("ActionID is chosen by the client")
        reply = await self._request(action, pairs, timeout=timeout)
        return reply.message.to_dict()

    async def ping(self) -> float:
        """Round trip of one Ping, in seconds."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self._request(p.PING, [], timeout=self.ping_timeout)
        return loop.time() - started

    async def originate(self, request: OriginateRequest) -> None:
        """Queue an async Originate under ``request.action_id``; see the module docstring."""
        aid = request.action_id
        variables = dict(request.variables)
        if variables.get(dialplan_vars.CALL_ID, aid) != aid:
            raise ValueError(f"{dialplan_vars.CALL_ID} must equal the ActionID {aid!r}")
        variables.pop(dialplan_vars.CALL_ID, None)
        headers = [
            (p.CHANNEL, request.channel),
            (p.CONTEXT, request.context),
            (p.EXTEN, request.exten),
            (p.PRIORITY, str(request.priority)),
            (p.TIMEOUT, str(request.timeout_ms)),
        ]
        if request.caller_id:
            headers.append((p.CALLER_ID, request.caller_id))
        headers.append((p.ASYNC, p.TRUE))
        headers += p.variable_headers({dialplan_vars.CALL_ID: aid, **variables})
        p.encode_action(p.ORIGINATE, [(p.ACTION_ID, aid), *headers])  # InvalidHeader before anything
        if aid in self._in_flight or aid in self._awaiting_result:
            raise ValueError(f"originate {aid!r} is already in progress")
        conn = self._live_connection(p.ORIGINATE)
        future = conn.submit(p.ORIGINATE, headers, action_id=aid)  # written from here on
        self._in_flight.add(aid)
        self._awaiting_result.add(aid)
        try:
            reply = await asyncio.wait_for(future, self.action_timeout)
        except AMINotConnected as exc:
            self._report_lost([aid])
            raise OriginateUnknown(aid, exc.message) from None
        except TimeoutError:
            conn.forget(aid)
            self._report_lost([aid])
            raise OriginateUnknown(aid, f"no reply within {self.action_timeout:.1f}s") from None
        except asyncio.CancelledError:  # our caller gave up; Asterisk may still queue it
            conn.forget(aid)
            self._report_lost([aid])
            raise
        except AMIError as exc:  # refused: Invalid channel, shutting down, Permission denied...
            self._in_flight.discard(aid)
            self._awaiting_result.discard(aid)
            if isinstance(exc, AMIShuttingDown):
                self.shutting_down = True
            log.warning("AMI %s: originate %s to %s refused: %s", self.name, aid,
                        mask_phones_in(request.channel), exc.message)
            raise
        self._in_flight.discard(aid)
        message = reply.message.get(p.MESSAGE)
        if message != p.MSG_ORIGINATE_QUEUED:
            log.warning("AMI %s: originate %s accepted with unexpected message %r", self.name, aid, message)
        log.info("AMI %s: originate %s to %s queued", self.name, aid, mask_phones_in(request.channel))

    async def find_calls(self) -> list[ChannelInfo]:
        """Every live channel with its IVR_CALL_ID (None if it has none), via ``Status``.

        Channels that carry a call id are tracked again, so their Hangup yields a CallEnded.
        """
        found: list[ChannelInfo] = []

        def item(event: p.Message) -> None:
            # runs as the item is read, so a Hangup right behind it already finds it tracked
            if event.name != p.EV_STATUS:
                return
            call_id = None
            for assignment in event.get_all(p.VARIABLE):
                var, value = p.split_assignment(assignment)
                if var == dialplan_vars.CALL_ID and value and value != "(null)":
                    call_id = value
            channel = event.get(p.CHANNEL) or ""
            uniqueid = event.get(p.UNIQUEID) or ""
            state = event.get(p.CHANNEL_STATE_DESC) or event.get("State") or ""
            found.append(ChannelInfo(channel=channel, uniqueid=uniqueid, call_id=call_id, state=state))
            if call_id:
                self._tracker.carries(uniqueid, channel, call_id)

        await self._request(p.STATUS, [(p.VARIABLES, dialplan_vars.CALL_ID)], timeout=None,
                            complete_event=p.EV_STATUS_COMPLETE, on_item=item)
        return found

    def forget(self, call_id: str) -> None:
        """Stop tracking a call the dialer settled by reconciliation (no CallEnded will follow)."""
        self._tracker.forget(call_id)
        self._awaiting_result.discard(call_id)

    # --- internals: requests -------------------------------------------------------------
    def _live_connection(self, action: str) -> AMIConnection:
        conn = self._conn
        if conn is None or not self.connected or conn.is_closed:
            raise AMINotConnected(f"not connected to {self.name} ({self.host}:{self.port})", action=action)
        return conn

    async def _request(self, action: str, headers: list[tuple[str, str]], *, timeout: float | None,
                       complete_event: str | None = None,
                       on_item: Callable[[p.Message], None] | None = None) -> Reply:
        conn = self._live_connection(action)
        try:
            return await conn.request(action, headers, timeout=timeout or self.action_timeout,
                                      complete_event=complete_event, on_item=on_item)
        except AMIShuttingDown:
            self.shutting_down = True
            raise

    # --- internals: connection loop ------------------------------------------------------
    async def _supervise(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                conn = await AMIConnection.open(
                    self.host, self.port, timeout=self.connect_timeout, on_event=self._on_event,
                    id_prefix=f"{self._id_prefix}-{self._sessions + 1}")
            except (OSError, TimeoutError, AMIError) as exc:
                self._failed(f"cannot connect to AMI {self.host}:{self.port}: {exc or type(exc).__name__}")
            else:
                self._sessions += 1
                try:
                    if await self._session(conn):
                        attempt = 0
                except AMIError as exc:
                    self.auth_failed = isinstance(exc, AMIAuthError)
                    self._failed(str(exc), level=logging.ERROR if isinstance(exc, AMIAuthError) else logging.WARNING)
                except Exception:  # a bug must not end reconnection for good
                    log.exception("AMI %s: session failed", self.name)
            if self._stopping:
                break
            delay = backoff_delay(attempt, self.reconnect_min, self.reconnect_max, self._rng)
            attempt += 1
            log.debug("AMI %s: reconnecting in %.2fs", self.name, delay)
            await asyncio.sleep(delay)

    def _failed(self, text: str, level: int = logging.WARNING) -> None:
        # the same failure repeated every back-off step is logged once, then at debug level
        log.log(level if text != self.last_error else logging.DEBUG, "AMI %s: %s", self.name, text)
        self.last_error = text

    async def _session(self, conn: AMIConnection) -> bool:
        """Log in and serve one connection until it closes; True if the login succeeded."""
        self._conn = conn
        self.banner = conn.banner
        logged_in = False
        pinger: asyncio.Task[None] | None = None
        try:
            try:
                await conn.request(p.LOGIN, [(p.USERNAME, self.username), (p.SECRET, self._secret)],
                                   timeout=self.connect_timeout + _LOGIN_GRACE)
            except AMINotConnected:
                raise AMIError(f"AMI {self.host}:{self.port} closed the connection during login") from None
            except AMITimeout:
                raise AMIError(f"AMI {self.host}:{self.port}: no reply to Login") from None
            except AMIError as exc:
                raise AMIAuthError(
                    f"AMI login as {self.username!r} to {self.host}:{self.port} refused: {exc.message}"
                ) from None
            logged_in = True
            self.connected = True
            self.auth_failed = False
            self.state_since = dt.datetime.now(dt.UTC)
            self.shutting_down = False
            self.last_error = None
            self._connected_evt.set()
            log.info("AMI %s: logged in to %s:%s as %r (%s)", self.name, self.host, self.port,
                     self.username, conn.banner)
            self._emit(self.on_connection_change, True)
            if self.ping_interval > 0:
                pinger = asyncio.create_task(self._keepalive(conn), name=f"ami-ping-{self.name}")
            reason = await conn.wait_closed()
            log.warning("AMI %s: connection to %s:%s lost (%s)", self.name, self.host, self.port, reason)
            return True
        finally:
            if pinger is not None:
                pinger.cancel()
            conn.abort()
            self._conn = None
            if self.connected:
                self.state_since = dt.datetime.now(dt.UTC)
            self.connected = False
            self._connected_evt.clear()
            if self._in_flight:
                self._report_lost(sorted(self._in_flight))
            # a new session never receives the OriginateResponse events of this one
            self._awaiting_result.clear()
            if logged_in:
                self._emit(self.on_connection_change, False)

    async def _keepalive(self, conn: AMIConnection) -> None:
        while not conn.is_closed:
            await asyncio.sleep(self.ping_interval)
            try:
                await conn.request(p.PING, timeout=self.ping_timeout)
            except AMIShuttingDown:
                self.shutting_down = True  # an answer all the same: the connection is alive
            except AMITimeout:
                log.warning("AMI %s: no reply to Ping within %.1fs; reconnecting", self.name, self.ping_timeout)
                conn.abort()
                return
            except AMINotConnected:
                return
            except AMIError as exc:
                log.debug("AMI %s: Ping answered with an error (still alive): %s", self.name, exc)

    def _report_lost(self, action_ids: list[str]) -> None:
        lost = [aid for aid in action_ids if aid in self._in_flight]
        if not lost:
            return
        for aid in lost:
            self._in_flight.discard(aid)
        log.error("AMI %s: originate outcome unknown (written, no reply): %s; reconcile, do not resend",
                  self.name, ", ".join(lost))
        self._emit(self.on_lost_originates, lost)

    # --- internals: events ---------------------------------------------------------------
    def _on_event(self, raw: bytes) -> None:
        name = p.peek_event(raw)
        if name == p.EV_VARSET:
            if _CALL_ID_VARSET in raw:
                msg = p.decode(raw)
                self._tracker.carries(msg.get(p.UNIQUEID) or "", msg.get(p.CHANNEL) or "",
                                      msg.get(p.VALUE) or "")
            elif _AGI_STATUS_VARSET in raw:
                msg = p.decode(raw)
                self._tracker.variable(msg.get(p.UNIQUEID) or "", dialplan_vars.AGI_STATUS,
                                       msg.get(p.VALUE) or "")
        elif name == p.EV_HANGUP:
            self._on_hangup(p.decode(raw))
        elif name == p.EV_ORIGINATE_RESPONSE:
            self._on_originate_response(p.decode(raw))
        elif name == p.EV_SHUTDOWN:
            self.shutting_down = True
            msg = p.decode(raw)
            if (msg.get(p.RESTART) or "").lower() == "true":
                self._restart_announced = True
            log.warning("AMI %s: Asterisk is shutting down (%s, restart: %s)", self.name,
                        msg.get(p.SHUTDOWN), msg.get(p.RESTART))
        elif name == p.EV_FULLY_BOOTED:
            uptime = _int(p.decode(raw).get(p.UPTIME), None)
            log.debug("AMI %s: FullyBooted (uptime %s)", self.name, uptime)
            self._note_boot(uptime)
        # everything else (Newexten, AGIExec*, DTMF*, ...) is not needed: dropped undecoded

    def _note_boot(self, uptime: int | None) -> None:
        """Count a restart when Asterisk booted after the boot we knew (Uptime is whole seconds,
        hence the 2 s tolerance) or announced one before the last disconnect."""
        booted = time.monotonic() - uptime if uptime is not None else None
        moved = booted is not None and self._booted_at is not None and booted > self._booted_at + 2.0
        if moved or (self._restart_announced and self._booted_at is not None):
            self.restarts += 1
            log.warning("AMI %s: Asterisk restarted (uptime %s): its calls of before are gone", self.name, uptime)
        self._restart_announced = False
        if booted is not None:
            self._booted_at = booted

    def _on_hangup(self, msg: p.Message) -> None:
        uniqueid = msg.get(p.UNIQUEID) or ""
        if not self._tracker.is_tracked(uniqueid):
            return
        ended = self._tracker.hangup(uniqueid, msg.get(p.CHANNEL) or "", _int(msg.get(p.CAUSE), 0),
                                     msg.get(p.CAUSE_TXT) or "", _int(msg.get(p.CHANNEL_STATE), None))
        if ended is not None:
            log.info("AMI %s: call %s ended: %s (cause %s %s)", self.name, ended.call_id, ended.result,
                     ended.cause, ended.cause_txt)
            self._emit(self.on_call_ended, ended)

    def _on_originate_response(self, msg: p.Message) -> None:
        aid = msg.action_id or ""
        if aid not in self._awaiting_result:
            return  # another client's originate, or one we already settled
        self._awaiting_result.discard(aid)
        success = msg.get(p.RESPONSE) == p.SUCCESS
        reason = _int(msg.get(p.REASON), causes.REASON_FAILED)
        uniqueid = msg.get(p.UNIQUEID)
        if uniqueid in (None, "", p.UNKNOWN_UNIQUEID):
            uniqueid = None
        channel = msg.get(p.CHANNEL) or ""
        if success and uniqueid is not None:
            self._tracker.carries(uniqueid, channel, aid)
            self._tracker.answered(aid)
        result = OriginateResult(
            action_id=aid, success=success, reason=reason, channel=channel, uniqueid=uniqueid,
            result=causes.ANSWERED if success else causes.result_for_reason(reason),
        )
        log.info("AMI %s: originate %s: %s (reason %s)", self.name, aid, result.result, reason)
        self._emit(self.on_originate_result, result)

    # --- internals: callbacks ------------------------------------------------------------
    def _emit(self, callback: Callable[[Any], Any] | None, arg: Any) -> None:
        if callback is not None:
            self._callbacks.put_nowait((callback, arg))

    async def _run_callbacks(self) -> None:
        while True:
            callback, arg = await self._callbacks.get()
            try:
                result = callback(arg)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("AMI %s: callback %r failed", self.name, callback)
            finally:
                self._callbacks.task_done()


def _int(text: str | None, default: Any) -> Any:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
