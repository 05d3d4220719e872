"""The audio manifest: one small JSON file per attempt, written by the dialer after it prepared
the call's audio (just before the Originate), read back at call start instead of preparing again.

Why a file next to the audio cache, not a column of call_attempts: the call start already needs
the cache directory (Asterisk plays those files; every process that runs calls shares it), the
file was written seconds earlier and is read from the page cache in one open/read (tens of
microseconds, no database round trip, nothing added to the writer the recorder depends on), and
it costs the database nothing: no migration, no ~5 KB per attempt kept forever (most attempts are
never answered and would never read it). Files live in one directory per local call date,
``<cache>/calls/<YYYY-MM-DD>/<call id>.json``; the dialer removes day directories older than
yesterday when it opens a new day (in a thread beside the call), so they never pile up.

A manifest is used only if all of these hold, otherwise the call start prepares the audio as
before (CallAudioSource logs the first fall-back of each kind):

* it exists under the call's local date (a call that starts after midnight prepares again: the
  read-backs and "today" in the prompts changed);
* its format version is this code's;
* the content fingerprint matches: a hash of everything the rendering read besides the account,
  i.e. the template files of the language, the admin's overrides (and their recordings' size
  and mtime), the reasons (menu and replies), the admin options and the settings that shape
  speech. An edit made after staging therefore falls back. The fingerprint is computed once by
  the dialer (before rendering, so an edit during rendering also falls back) and by the call
  side at most once per `ContentVersions.max_age` per language, not per call (an edit reaches
  calls that start up to 2 x max_age later);
* the debt message's file is still in the cache (one stat, not one per phrase; a purged cache
  also removes the manifests, which live inside it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.config import Settings
from ivr.db.models import PromptTemplate, Reason, Setting
from ivr.voice.call_audio import CallAudio

log = logging.getLogger(__name__)

FORMAT = 1
SUBDIR = "calls"
FILE_MODE = 0o640  # like the audio: the subscriber's debt is in the file names' neighbourhood
DIR_MODE = 0o750
KEEP_DAYS = 2  # day directories kept: today and yesterday (accounts' time zones straddle midnight)
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# the settings that change what is said or how it sounds (Settings.extra keys of ivr.voice.tts)
_SPEECH_EXTRA = ("IVR_TTS_SPEED", "IVR_TTS_PITCH")


@dataclass(frozen=True)
class PreparedCall:
    audio: CallAudio
    options: dict[str, Any]
    today: dt.date
    horizon: dt.date


class ManifestUnusable(Exception):
    """A manifest that exists but cannot be used; str() says why (for the fall-back log)."""

    def __init__(self, kind: str, detail: str) -> None:
        self.kind = kind
        super().__init__(detail)


def calls_dir(cache_root: Path) -> Path:
    return Path(cache_root) / SUBDIR


def manifest_path(cache_root: Path, call_id: str, day: dt.date) -> Path:
    """Where the manifest of `call_id` for local date `day` lives. Call ids the dialer makes
    (`<dialer>-<hex>`) are used as they are; anything else is hashed into a safe name."""
    name = call_id if _SAFE_ID.match(call_id) else "h-" + hashlib.sha256(call_id.encode()).hexdigest()[:40]
    return calls_dir(cache_root) / day.isoformat() / f"{name}.json"


# -- the content fingerprint -------------------------------------------------------------------

def fingerprint(session: Session, settings: Settings, language: str) -> str:
    """Hash of every input of AudioPreparer.prepare() that is not the account's own data (see
    the module docstring). Core selects, no ORM objects: the call side recomputes it in a thread
    while calls run, and it should hold the GIL as little as possible."""
    h = hashlib.sha256()

    def put(*parts: object) -> None:
        h.update(json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str).encode())
        h.update(b"\0")

    put("format", FORMAT, language, settings.company_name, settings.default_currency, settings.default_language,
        settings.tts_engine, [(k, settings.extra.get(k, "")) for k in _SPEECH_EXTRA])
    folder = Path(settings.prompts_dir) / language
    try:
        entries = sorted((e.name, e.path) for e in os.scandir(folder) if e.name.endswith(".j2"))
    except FileNotFoundError:
        entries = []
    for name, path in entries:
        try:
            with open(path, "rb") as f:
                put("file", name, hashlib.sha256(f.read()).hexdigest())
        except OSError as exc:
            put("file", name, f"unreadable {exc.errno}")
    t = PromptTemplate.__table__.c
    for row in session.execute(select(t.id, t.name, t.stage_code, t.body, t.recording_path, t.updated_at)
                               .where(t.language == language).order_by(t.id)):
        put("override", *row)
        if row.recording_path:
            src = Path(row.recording_path)
            if not src.is_absolute():
                src = Path(settings.recordings_dir) / src
            try:
                st = src.stat()
                put("recording", st.st_size, st.st_mtime_ns)
            except OSError as exc:
                put("recording", f"unreadable {exc.errno}")
    r = Reason.__table__.c
    for reason in session.execute(select(r.id, r.code, r["key"], r.actionable, r.route, r.replies, r.position,
                                         r.active).order_by(r.id)):
        put("reason", *reason)
    s = Setting.__table__.c
    for option in session.execute(select(s["key"], s.value).order_by(s["key"])):
        put("option", *option)
    return h.hexdigest()[:32]


class ContentVersions:
    """The current fingerprint per language, recomputed in a thread, never once per call.

    A value younger than `max_age` is used as it is. An older one starts a recomputation (one at
    a time per language, shared by every call start that asks meanwhile) and is still used by the
    call starts that come before the new value, as long as it is younger than twice `max_age`;
    past that a call start waits for the new value. So under steady traffic no call start waits
    for the database, and an edit reaches every call that starts at most 2 x `max_age` (plus one
    computation) later."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, *, max_age: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._sessions = sessions
        self._settings = settings
        self.max_age = max_age
        self._monotonic = monotonic
        self._known: dict[str, tuple[float, str]] = {}
        self._pending: dict[str, asyncio.Future[str]] = {}
        self.computed = 0  # how many times a fingerprint was computed (tests, diagnostics)

    def compute(self, language: str) -> str:
        self.computed += 1
        with self._sessions() as session:
            return fingerprint(session, self._settings, language)

    def _refresh(self, language: str) -> asyncio.Future[str]:
        pending = self._pending.get(language)
        if pending is None:
            started = self._monotonic()  # age counts from before the read: never younger than it is
            pending = asyncio.ensure_future(asyncio.to_thread(self.compute, language))
            self._pending[language] = pending

            def done(fut: asyncio.Future[str], language: str = language, started: float = started) -> None:
                self._pending.pop(language, None)
                if fut.cancelled():
                    return
                if fut.exception() is not None:
                    log.warning("content fingerprint of %s not computed: %s", language, fut.exception())
                    return
                self._known[language] = (started, fut.result())

            pending.add_done_callback(done)
        return pending

    async def current(self, language: str) -> str:
        known = self._known.get(language)
        age = self._monotonic() - known[0] if known is not None else None
        if known is not None and age is not None and age < self.max_age:
            return known[1]
        pending = self._refresh(language)
        if known is not None and age is not None and age < 2 * self.max_age:
            return known[1]  # recent enough while the new value is computed
        return await asyncio.shield(pending)


# -- writing and reading -------------------------------------------------------------------------

def encode(prepared: PreparedCall, *, call_id: str, fingerprint: str) -> bytes:
    """The manifest's bytes; TypeError/ValueError if the options are not plain JSON (then no
    manifest is written and the call start prepares)."""
    audio = prepared.audio
    doc = {
        "format": FORMAT,
        "call_id": call_id,
        "fingerprint": fingerprint,
        "today": prepared.today.isoformat(),
        "horizon": prepared.horizon.isoformat(),
        "language": audio.language,
        "message_name": audio.message_name,
        "phrases": audio.phrases,
        "readbacks": {day.isoformat(): name for day, name in audio.readbacks.items()},
        "reason_replies": audio.reason_replies,
        "reasons": [list(r) for r in audio.reasons],
        "options": prepared.options,
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _make_dir(directory: Path) -> None:
    parent = directory.parent
    if not parent.is_dir():
        parent.parent.mkdir(parents=True, exist_ok=True)  # the cache root: the admin's business
        try:
            parent.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
    try:
        directory.mkdir(mode=DIR_MODE)
    except FileExistsError:
        pass


def write(cache_root: Path, call_id: str, day: dt.date, data: bytes) -> Path:
    """Atomically (temp file + rename): a call start sees the whole manifest or none."""
    path = manifest_path(cache_root, call_id, day)
    new_day = not path.parent.is_dir()
    if new_day:
        _make_dir(path.parent)
        # a day of manifests can be tens of thousands of files: removed beside, not before, this call
        threading.Thread(target=remove_old_days, args=(cache_root, day), name="manifest-cleanup", daemon=True).start()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_old_days(cache_root: Path, today: dt.date) -> int:
    """Delete the day directories before yesterday (their calls are over or would prepare
    again anyway). Returns how many were removed."""
    oldest = today - dt.timedelta(days=KEEP_DAYS - 1)
    removed = 0
    try:
        entries = list(os.scandir(calls_dir(cache_root)))
    except FileNotFoundError:
        return 0
    for entry in entries:
        try:
            day = dt.date.fromisoformat(entry.name)
        except ValueError:
            continue
        if day < oldest and entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d old day(s) of audio manifests", removed)
    return removed


def read(cache_root: Path, call_id: str, day: dt.date) -> dict[str, Any] | None:
    """The manifest of `call_id` for local date `day`; None if there is none. Blocking file I/O:
    the FastAGI side calls it off the event loop (CallAudioSource._read_manifest says why)."""
    try:
        with open(manifest_path(cache_root, call_id, day), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ManifestUnusable("unreadable", f"manifest unreadable: {exc}") from None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ManifestUnusable("unreadable", f"manifest is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ManifestUnusable("format", f"manifest format {doc.get('format') if isinstance(doc, dict) else '?'}, "
                                         f"expected {FORMAT}")
    if doc.get("call_id") != call_id:
        raise ManifestUnusable("unreadable", "manifest is for another call id")
    return doc


def decode(doc: dict[str, Any]) -> PreparedCall:
    """The PreparedCall a manifest describes; ManifestUnusable if a field is missing or wrong."""
    try:
        phrases = {str(k): str(v) for k, v in doc["phrases"].items()}
        audio = CallAudio(
            language=str(doc["language"]),
            phrases=phrases,
            readbacks={dt.date.fromisoformat(k): str(v) for k, v in doc["readbacks"].items()},
            reason_replies={str(k): str(v) for k, v in doc["reason_replies"].items()},
            reasons=[(str(key), str(code), bool(actionable), None if route is None else str(route))
                     for key, code, actionable, route in doc["reasons"]],
            message_name=str(doc["message_name"]),
        )
        audio.get(audio.message_name)
        return PreparedCall(audio, dict(doc["options"]), dt.date.fromisoformat(doc["today"]),
                            dt.date.fromisoformat(doc["horizon"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ManifestUnusable("unreadable", f"manifest field missing or malformed: {exc!r}") from None


def same_audio(a: PreparedCall, b: PreparedCall) -> bool:
    """Whether two preparations play the same files with the same options (texts aside)."""
    return dataclasses.replace(a.audio, texts={}) == dataclasses.replace(b.audio, texts={}) and \
        (a.options, a.today, a.horizon) == (b.options, b.today, b.horizon)
