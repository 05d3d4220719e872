"""A small real billing endpoint for the outbox tests: an HTTP server on 127.0.0.1 (random port)
in a thread. It checks the signature with its own HMAC code (not the sender's), dedups by
Idempotency-Key and counts; it can fail the next N requests with 500, go down (the listening
socket closed: connection refused) and come back on the same port, and hold a response."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    """What the receiver has got so far (guarded by Receiver.cond)."""

    requests: int = 0
    failed_on_purpose: int = 0
    bad_signatures: int = 0
    accepted: dict[str, int] = field(default_factory=dict)  # key -> times a request with it got 2xx
    first: list[dict[str, Any]] = field(default_factory=list)  # bodies, in order of first acceptance
    held: list[str] = field(default_factory=list)  # keys whose response is being held


class Receiver:
    def __init__(self, secret: str) -> None:
        self.secret = secret.encode()
        self.cond = threading.Condition()
        self.seen = Seen()
        self.fail_next = 0
        self.retry_after = ""  # sent with the purposeful 500s when set
        self.hold_next = False
        self.release = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ivr/events"

    # -- life -------------------------------------------------------------------------------------
    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.handle(self.headers.get("Idempotency-Key", ""),
                                         self.headers.get("X-IVR-Signature", ""), body)
                self.send_response(status)
                if status == 503 and receiver.retry_after:
                    self.send_header("Retry-After", receiver.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def down(self) -> None:
        """Close the listening socket: new connections are refused until `up()`."""
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = None

    def close(self) -> None:
        self.release.set()
        if self._server is not None:
            self.down()

    # -- behaviour --------------------------------------------------------------------------------
    def _signature_ok(self, header: str, body: bytes) -> bool:
        try:
            parts = dict(p.split("=", 1) for p in header.split(","))
            ts = int(parts["t"])
        except (KeyError, ValueError):
            return False
        want = hmac.new(self.secret, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return abs(time.time() - ts) < 300 and hmac.compare_digest(want, parts.get("v1", ""))

    def handle(self, key: str, signature: str, body: bytes) -> int:
        hold = False
        with self.cond:
            self.seen.requests += 1
            if not self._signature_ok(signature, body):
                self.seen.bad_signatures += 1
                self.cond.notify_all()
                return 401
            if self.fail_next > 0:
                self.fail_next -= 1
                self.seen.failed_on_purpose += 1
                self.cond.notify_all()
                return 503 if self.retry_after else 500
            doc = json.loads(body)
            assert doc["id"] == key, "the body's id is the Idempotency-Key"
            if key not in self.seen.accepted:
                self.seen.first.append(doc)
            self.seen.accepted[key] = self.seen.accepted.get(key, 0) + 1
            if self.hold_next:
                self.hold_next = False
                hold = True
                self.seen.held.append(key)
            self.cond.notify_all()
        if hold:  # processed, but the answer is late (the sender may be gone by then)
            self.release.wait(30)
        return 200

    def wait_for(self, predicate: Any, timeout: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.seen), timeout), f"receiver never saw it: {self.seen}"
