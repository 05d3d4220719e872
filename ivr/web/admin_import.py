"""The billing import wizard: upload, preview, confirm, then the import in the background.

1. Upload (POST /admin/import, or /admin/import/upload): the file is kept under the upload directory with a random
   name; nothing is read into the database.
2. Preview (/admin/import/preview/<token>): the detected encoding and delimiter (editable), the
   first rows as they will be read, the column mapping (editable; the last confirmed mapping of
   that kind of file is offered first) and the rows that would be rejected with line and reason,
   in the UI language and naming the file's own columns (ivr.billing.wizard, ivr.web.import_text).
3. Confirm: the mapping is saved for the next file (table import_mappings) and the import runs
   on a single background worker thread through the real import path (ivr.billing.importer), so
   a big file never blocks the web process's event loop; its page shows the progress, then the
   report. Imports run one at a time: two writers at once would only wait on each other's locks.
4. History (/admin/import/history): every import run (also the CLI's and the API's) with the rows
   read, stored and rejected, and a CSV of the rejected rows (line number, the original line,
   the reason) for the runs made here.

The worker's jobs live in memory: after a restart their pages are gone, the history stays.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import multiprocessing as mp
import re
import secrets
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ivr import csvsafe
from ivr.billing.columns import fields_of
from ivr.billing.csvread import ENCODINGS, CsvFileError
from ivr.billing.parse import RowError
from ivr.billing.wizard import (
    MAX_PHONE_COLUMNS,
    FixedColumns,
    Preview,
    build_resolved,
    is_warning,
    open_chosen,
    original_lines,
    preview_file,
    reject_unknown_accounts,
)
from ivr.db.models import Account, ImportMapping, ImportRun, utcnow
from ivr.web.admin_data import IMPORT_KINDS, MAX_UPLOAD_BYTES
from ivr.web.common import (
    WebContext,
    checked_form,
    ctx,
    form_str,
    in_db,
    lang_of,
    redirect,
    render,
    require,
    t,
)
from ivr.web.i18n import translator
from ivr.web.import_text import column_of, explain, field_label, file_error_text

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,64}")
DELIMITER_CHOICES = ((";", "imp_delim_semicolon"), (",", "imp_delim_comma"), ("\t", "imp_delim_tab"),
                     ("|", "imp_delim_bar"))
ENCODING_LABELS = {"utf-8-sig": "UTF-8 (BOM)", "utf-8": "UTF-8", "cp1251": "Windows-1251"}
# From this size the preview reads the file in a child process: parsing is CPU work that would
# otherwise hold the web process's interpreter lock for seconds, and `ivr run` serves the
# FastAGI calls from that same process.
PREVIEW_IN_PROCESS_BYTES = 2 << 20
UPLOAD_TTL = dt.timedelta(days=1)  # previews never confirmed are removed after this
SHOWN_REPORT_ERRORS = 1000
KEPT_JOBS = 50


# --- the background worker ----------------------------------------------------------------------

@dataclass
class ImportJob:
    id: str
    kind: str
    filename: str
    username: str
    size: int
    columns: dict[str, str]  # field -> the file's column (for the messages)
    status: str = "queued"  # queued | running | done | failed
    done_bytes: int = 0
    run_id: int | None = None
    error: str = ""
    report: Any = None
    future: Future[None] | None = field(default=None, repr=False)

    def progress(self, done: int, size: int) -> None:
        self.done_bytes, self.size = done, size

    @property
    def percent(self) -> int:
        if self.status == "done":
            return 100
        return min(99, self.done_bytes * 100 // self.size) if self.size else 0


class ImportWorker:
    """One thread that runs confirmed imports in order; the jobs' states for their pages."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivr-import")
        self._jobs: OrderedDict[str, ImportJob] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, job: ImportJob, work: Any) -> ImportJob:
        def run() -> None:
            job.status = "running"
            try:
                work(job)
                job.status = "done"
            except CsvFileError as exc:
                job.error, job.status = str(exc), "failed"
                log.info("import %s of %s refused: %s", job.id, job.filename, exc)
            except Exception as exc:  # the admin sees it failed; the log keeps the traceback
                job.error, job.status = f"{type(exc).__name__}: {exc}", "failed"
                log.exception("import %s of %s failed", job.id, job.filename)

        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEPT_JOBS:
                old_id, old = next(iter(self._jobs.items()))
                if old.status in ("queued", "running"):
                    break
                del self._jobs[old_id]
            job.future = self._pool.submit(run)
        return job

    def get(self, job_id: str) -> ImportJob | None:
        with self._lock:
            return self._jobs.get(job_id)


def worker_of(request: Request) -> ImportWorker:
    worker: ImportWorker | None = getattr(request.app.state, "import_worker", None)
    if worker is None:
        worker = ImportWorker()
        request.app.state.import_worker = worker
    return worker


# --- uploaded files -----------------------------------------------------------------------------

def _imports_dir(web: WebContext) -> Path:
    return web.upload_dir / "imports"


def _rejected_path(web: WebContext, run_id: int) -> Path:
    return web.upload_dir / "import-rejected" / f"run-{run_id}.jsonl"


def _upload_paths(web: WebContext, token: str) -> tuple[Path, Path]:
    if not _TOKEN.fullmatch(token):
        raise HTTPException(404, "no such upload")
    base = _imports_dir(web)
    return base / f"{token}.csv", base / f"{token}.json"


def _load_upload(request: Request, token: str) -> tuple[Path, dict[str, Any]]:
    data_path, meta_path = _upload_paths(ctx(request), token)
    try:
        meta = json.loads(meta_path.read_text("utf-8"))
    except (OSError, ValueError):
        raise HTTPException(404, t(request, "imp_err_upload_gone")) from None
    if not data_path.exists():
        raise HTTPException(404, t(request, "imp_err_upload_gone"))
    return data_path, meta


def _forget_old_uploads(base: Path, now: float) -> None:
    """Uploads previewed but never confirmed: gone after a day (they hold subscribers' data)."""
    if not base.is_dir():
        return
    for path in base.iterdir():
        try:
            if now - path.stat().st_mtime > UPLOAD_TTL.total_seconds():
                path.unlink()
        except OSError:
            continue


def _save_upload(web: WebContext, data: bytes, meta: dict[str, Any]) -> str:
    base = _imports_dir(web)
    base.mkdir(parents=True, exist_ok=True)
    _forget_old_uploads(base, time.time())
    token = secrets.token_urlsafe(24)
    data_path, meta_path = _upload_paths(web, token)
    data_path.write_bytes(data)
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), "utf-8")
    return token


async def import_page(request: Request, error: str = "", kind: str = "accounts", status_code: int = 200) -> Response:
    await require(request, "admin")
    return render(request, "admin/import.html", {"kinds": IMPORT_KINDS, "kind": kind, "error": error},
                  status_code=status_code)


async def upload(request: Request) -> Response:
    user = await require(request, "admin")
    form = await checked_form(request)
    kind = form_str(form, "kind")
    file = form.get("file")
    if kind not in IMPORT_KINDS:
        raise HTTPException(400, t(request, "err_choice"))
    if not isinstance(file, UploadFile) or not file.filename:
        return await import_page(request, t(request, "err_no_file"), kind, 400)
    data = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return await import_page(request, t(request, "err_file_too_big", mb=MAX_UPLOAD_BYTES // 2**20), kind, 400)
    meta = {"kind": kind, "filename": file.filename[:300], "user": user.username,
            "uploaded_at": utcnow().isoformat()}
    token = await run_in_threadpool(_save_upload, ctx(request), data, meta)
    log.info("%s file %s uploaded by %s for preview (%d bytes)", kind, file.filename, user.username, len(data))
    return redirect(f"/admin/import/preview/{token}")


# --- preview ------------------------------------------------------------------------------------

def _saved_mapping(session: Session, kind: str) -> dict[str, list[str]]:
    row = session.get(ImportMapping, kind)
    return dict(row.columns) if row is not None and isinstance(row.columns, dict) else {}


def _save_mapping(session: Session, kind: str, choice: dict[str, list[str]], username: str) -> None:
    row = session.get(ImportMapping, kind)
    if row is None:
        row = ImportMapping(kind=kind)
        session.add(row)
    row.columns, row.updated_by, row.updated_at = choice, username, utcnow()


def _form_choice(form: FormData, kind: str) -> dict[str, list[str]]:
    names, _required = fields_of(kind)
    out: dict[str, list[str]] = {}
    for name in names:
        values = [v.strip() for v in form.getlist(f"map_{name}") if isinstance(v, str) and v.strip()]
        if values:
            out[name] = values[:MAX_PHONE_COLUMNS] if name == "phones" else values[:1]
    return out


def _form_format(form: FormData | None) -> tuple[str | None, str | None, bool]:
    """(encoding, delimiter) chosen on the form, and whether either differs from what the
    previous preview used (then the mapping of the old header no longer applies)."""
    if form is None:
        return None, None, True
    encoding = form_str(form, "encoding") or None
    delimiter = form.get("delimiter")
    delim = delimiter if isinstance(delimiter, str) and delimiter else None  # a tab: not stripped
    if encoding not in ENCODINGS:
        encoding = None
    if delim not in {d for d, _k in DELIMITER_CHOICES}:
        delim = None
    changed = (encoding != (form_str(form, "shown_encoding") or None)
               or delim != (form.get("shown_delimiter") or None))
    return encoding, delim, changed


def run_preview(path: Path, kind: str, **kw: Any) -> Preview:
    """preview_file, in a spawned child process for a big file (blocking: call it off the loop)."""
    if path.stat().st_size < PREVIEW_IN_PROCESS_BYTES:
        return preview_file(path, kind, **kw)
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(preview_file, path, kind, **kw).result()


def _preview_context(request: Request, token: str, meta: dict[str, Any], preview: Preview | None,
                     error: str = "") -> dict[str, Any]:
    tr = translator(lang_of(request))
    kind = meta["kind"]
    names, required = fields_of(kind)
    context: dict[str, Any] = {
        "token": token, "kind": kind, "filename": meta.get("filename", ""), "error": error, "preview": preview,
        "fields": [(n, field_label(tr, n), n in required) for n in names], "encodings": ENCODING_LABELS,
        "delimiters": DELIMITER_CHOICES, "phone_slots": range(MAX_PHONE_COLUMNS), "problems": [], "warnings": [],
        "chosen_encoding": preview.encoding if preview else "", "chosen_delimiter": preview.delimiter if preview else "",
    }
    if preview is not None:
        columns = dict(preview.resolved.names)
        context["problems"] = [(e.line, column_of(tr, e.field, columns), e.value,
                                explain(tr, e.reason, e.field, e.value, columns)) for e in preview.rejected]
        context["warnings"] = [(e.line, column_of(tr, e.field, columns), e.value,
                                explain(tr, e.reason, e.field, e.value, columns)) for e in preview.warnings]
        context["missing_labels"] = [field_label(tr, n) for n in preview.missing]
        context["width"] = len(preview.header)
        context["delimiter_key"] = dict(DELIMITER_CHOICES)[preview.delimiter]
    return context


async def preview_page(request: Request) -> Response:
    """GET: the file as detected, with the saved mapping. POST: as the admin set it, or confirm."""
    user = await require(request, "admin")
    form = await checked_form(request) if request.method == "POST" else None
    token = request.path_params["token"]
    data_path, meta = _load_upload(request, token)
    kind = meta.get("kind")
    if kind not in IMPORT_KINDS:
        raise HTTPException(404, t(request, "imp_err_upload_gone"))
    web = ctx(request)
    encoding, delimiter, changed = _form_format(form)
    choice = None if form is None or changed else _form_choice(form, kind)
    if form is not None and form_str(form, "action") == "confirm" and not changed:
        return await _confirm(request, user.username, token, data_path, meta, encoding, delimiter, choice or {})
    saved = await in_db(request, lambda s: _saved_mapping(s, kind))
    try:
        preview = await run_in_threadpool(run_preview, data_path, kind, settings=web.settings, today=web.today(),
                                          encoding=encoding, delimiter=delimiter, choice=choice, saved=saved)
    except CsvFileError as exc:
        log.info("%s preview of %s refused: %s", kind, meta.get("filename", ""), exc)
        message = t(request, "err_import_file", name=meta.get("filename", ""),
                    reason=file_error_text(translator(lang_of(request)), str(exc)))
        if form is not None:  # the admin's encoding or delimiter: let them choose another
            context = _preview_context(request, token, meta, None, message)
            context.update({"chosen_encoding": encoding or "", "chosen_delimiter": delimiter or ""})
            return render(request, "admin/import_preview.html", context, status_code=400)
        # not a CSV file at all: nothing to preview; the upload form again, with the reason
        for path in _upload_paths(web, token):
            path.unlink(missing_ok=True)
        return await import_page(request, message, kind, 400)
    if preview.kind == "payments" and preview.payment_accounts:
        await in_db(request, lambda s: reject_unknown_accounts(preview, lambda ids: _known_accounts(s, ids)))
    return render(request, "admin/import_preview.html", _preview_context(request, token, meta, preview))


def _known_accounts(session: Session, ids: list[str]) -> set[str]:
    return set(session.scalars(select(Account.external_id).where(Account.external_id.in_(ids))))


async def _confirm(request: Request, username: str, token: str, data_path: Path, meta: dict[str, Any],
                   encoding: str | None, delimiter: str | None, choice: dict[str, list[str]]) -> Response:
    web = ctx(request)
    kind = meta["kind"]
    earlier = worker_of(request).get(str(meta.get("job", "")))
    if earlier is not None:  # confirm pressed twice, or the back button: one import per upload
        return redirect(f"/admin/import/jobs/{earlier.id}")

    def header_of() -> tuple[list[str], str, str, int]:
        src = open_chosen(data_path, encoding, delimiter)
        try:
            return src.header, src.encoding, src.delimiter, src.size
        finally:
            src.close()

    try:
        header, used_encoding, used_delimiter, size = await run_in_threadpool(header_of)
    except CsvFileError as exc:
        message = t(request, "err_import_file", name=meta.get("filename", ""),
                    reason=file_error_text(translator(lang_of(request)), str(exc)))
        return render(request, "admin/import_preview.html", _preview_context(request, token, meta, None, message),
                      status_code=400)
    resolved, twice = build_resolved(kind, header, choice)
    _names, required = fields_of(kind)
    if twice or any(n not in resolved.index for n in required):
        # the form was changed by hand or the mapping is incomplete: show the preview again
        preview = await run_in_threadpool(run_preview, data_path, kind, settings=web.settings, today=web.today(),
                                          encoding=encoding, delimiter=delimiter, choice=choice)
        return render(request, "admin/import_preview.html",
                      _preview_context(request, token, meta, preview, t(request, "imp_not_ready")), status_code=400)
    saved_choice = {n: [header[p] for p in (resolved.phones if n == "phones" else (pos,))]
                    for n, pos in resolved.index.items()}
    await in_db(request, lambda s: _save_mapping(s, kind, saved_choice, username))
    job = ImportJob(id=secrets.token_urlsafe(12), kind=kind, filename=meta.get("filename", "upload.csv"),
                    username=username, size=size, columns=dict(resolved.names))
    today, sessions, settings = web.today(), web.sessions, web.settings

    def work(job: ImportJob) -> None:
        from ivr import jobs

        try:
            # in `ivr run`, in the import process: never on the calls' GIL (ivr.jobs)
            report = jobs.import_file(kind, sessions, data_path, settings=settings, today=today,
                                      columns=FixedColumns(resolved, header), filename=job.filename,
                                      encoding=used_encoding, delimiter=used_delimiter, on_progress=job.progress)
            job.report = report
            job.run_id = report.run_id
            if report.run_id is not None:
                _write_rejected(web, report.run_id, data_path, used_encoding, report.errors, job.columns)
            log.info("%s import %s of %s by %s: %s", kind, job.id, job.filename, job.username, report.summary())
        finally:
            for path in _upload_paths(web, token):
                path.unlink(missing_ok=True)

    meta_path = _upload_paths(web, token)[1]
    await run_in_threadpool(meta_path.write_text, json.dumps({**meta, "job": job.id}, ensure_ascii=False), "utf-8")
    worker_of(request).submit(job, work)
    log.info("%s import %s of %s confirmed by %s", kind, job.id, job.filename, username)
    return redirect(f"/admin/import/jobs/{job.id}")


def _write_rejected(web: WebContext, run_id: int, data_path: Path, encoding: str, errors: list[RowError],
                    columns: dict[str, str]) -> None:
    """Keep the rejected rows of a run (with their original text) for the history's download."""
    rejected = [e for e in errors if not is_warning(e)]
    texts = original_lines(data_path, encoding, {e.line for e in rejected})
    path = _rejected_path(web, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for e in rejected:
            out.write(json.dumps({"line": e.line, "field": e.field, "value": e.value, "reason": e.reason,
                                  "column": columns.get(e.field or "", ""), "original": texts.get(e.line, "")},
                                 ensure_ascii=False) + "\n")


# --- the job's page -----------------------------------------------------------------------------

def _job_or_404(request: Request) -> ImportJob:
    job = worker_of(request).get(request.path_params["job_id"])
    if job is None:
        raise HTTPException(404, t(request, "imp_err_job_gone"))
    return job


async def job_page(request: Request) -> Response:
    await require(request, "admin")
    job = _job_or_404(request)
    tr = translator(lang_of(request))
    problems: list[tuple[int, str, Any, str]] = []
    warnings: list[tuple[int, str, Any, str]] = []
    if job.report is not None:
        for e in job.report.errors[:SHOWN_REPORT_ERRORS]:
            item = (e.line, column_of(tr, e.field, job.columns), e.value,
                    explain(tr, e.reason, e.field, e.value, job.columns))
            (warnings if is_warning(e) else problems).append(item)
    error = file_error_text(tr, job.error) if job.error else ""
    return render(request, "admin/import_job.html", {"job": job, "problems": problems, "warnings": warnings,
                                                     "job_error": error})


async def job_json(request: Request) -> Response:
    await require(request, "admin")
    job = _job_or_404(request)
    return JSONResponse({"status": job.status, "percent": job.percent, "done_bytes": job.done_bytes,
                         "size": job.size})


# --- history ------------------------------------------------------------------------------------

async def history_page(request: Request) -> Response:
    await require(request, "admin")

    def load(session: Session) -> list[dict[str, Any]]:
        runs = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(200))
        return [{"id": r.id, "kind": r.kind, "filename": r.filename, "created_at": r.created_at,
                 "read": r.rows_ok + r.rows_bad, "stored": r.rows_ok, "rejected": r.rows_bad,
                 "created": r.created, "updated": r.updated,
                 "has_errors": bool(r.rows_bad or r.errors)} for r in runs]

    return render(request, "admin/import_history.html", {"runs": await in_db(request, load)})


def rejected_rows(web: WebContext, run: ImportRun) -> list[dict[str, Any]]:
    """The rejected rows of a run: the wizard's file (with the original lines), or else what the
    run recorded (CLI and API imports: no original text, at most the first 1000 problems)."""
    path = _rejected_path(web, run.id)
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    return [{"line": e.get("line"), "field": e.get("field"), "value": e.get("value"), "reason": e.get("reason", ""),
             "column": "", "original": ""}
            for e in (run.errors or []) if "were kept" not in str(e.get("reason", ""))]


async def rejected_csv(request: Request) -> Response:
    await require(request, "admin")
    web = ctx(request)
    run_id = int(request.path_params["run_id"])
    lang = lang_of(request)
    tr = translator(lang)

    def load(session: Session) -> tuple[str, list[dict[str, Any]]] | None:
        run = session.get(ImportRun, run_id)
        return None if run is None else (run.filename, rejected_rows(web, run))

    found = await in_db(request, load)
    if found is None:
        raise HTTPException(404, t(request, "err_not_found"))
    filename, rows = found
    out = io.StringIO()
    # the admin opens it in a spreadsheet: ";" where the spreadsheet's locale uses a decimal comma
    writer = csvsafe.writer(out, delimiter=";" if lang != "en" else ",", lineterminator="\r\n",
                            quoting=csv.QUOTE_MINIMAL)
    writer.writerow([tr("imp_csv_line"), tr("imp_csv_original"), tr("imp_csv_reason")])
    for row in rows:
        columns = {row["field"]: row["column"]} if row.get("field") and row.get("column") else {}
        writer.writerow([row.get("line") if row.get("line") is not None else "", row.get("original", ""),
                         explain(tr, str(row.get("reason", "")), row.get("field"), row.get("value"), columns)])
    stem = re.sub(r"[^\w.-]+", "_", Path(filename).stem, flags=re.UNICODE)[:60] or "import"
    name = f"rejected-{run_id}-{stem}.csv"
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    from urllib.parse import quote

    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f"attachment; filename=\"{ascii_name}\"; "
                                                    f"filename*=UTF-8''{quote(name)}"})


def routes() -> list[BaseRoute]:
    return [
        Route("/admin/import", import_page, methods=["GET"]),
        Route("/admin/import", upload, methods=["POST"]),
        Route("/admin/import/upload", upload, methods=["POST"]),
        Route("/admin/import/preview/{token:str}", preview_page, methods=["GET", "POST"]),
        Route("/admin/import/jobs/{job_id:str}.json", job_json, methods=["GET"]),
        Route("/admin/import/jobs/{job_id:str}", job_page, methods=["GET"]),
        Route("/admin/import/history", history_page, methods=["GET"]),
        Route("/admin/import/history/{run_id:int}/rejected.csv", rejected_csv, methods=["GET"]),
    ]
