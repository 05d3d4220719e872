"""Render prompt templates to the text the robot speaks.

Admins edit templates in the browser, so a template is untrusted input: it runs in Jinja2's
immutable sandbox (no attribute tricks such as ''.__class__, no mutation of the context, no
include/import) with a time and size budget (ivr.prompts.sandbox: a runaway loop or a gigabyte
string is refused in well under a second), every variable must be one of CONTEXT_DOC (a typo is refused with its line
number), undefined values raise instead of speaking an empty gap, and a render either returns the
whole text or raises TemplateProblem: a call never plays half a sentence.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes, pass_context
from jinja2.runtime import Context
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import PromptTemplate
from ivr.prompts import words
from ivr.prompts.context import CONTEXT_DOC, sample_context
from ivr.prompts.sandbox import BoundedSandbox, RenderLimitExceeded, RenderLimits

__all__ = ["CONTEXT_DOC", "MissingTemplate", "PromptStore", "ResolvedTemplate", "TemplateProblem"]

log = logging.getLogger(__name__)

# A phrase longer than this is a runaway loop or a pasted document, not something to say on a call.
MAX_TEXT_CHARS = 2000
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class TemplateProblem(Exception):
    """A template that cannot be used; str() says where: "debt_soft (ru), line 3: unknown variable 'amont'"."""

    def __init__(self, name: str, line: int | None, message: str, language: str | None = None, *,
                 key: str = "", params: Mapping[str, Any] | None = None, detail: str = "") -> None:
        self.name = name
        self.line = line
        self.message = message  # English, for logs and the CLI
        self.language = language
        # for the web UI: the catalogue key of the message (ivr/locale, "tpl_err_<key>") with its
        # parameters, and Jinja's own words (English, not translatable) when it has any
        self.key = key
        self.params = dict(params or {})
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.name} ({self.language})" if self.language else self.name
        if self.line is not None:
            where += f", line {self.line}"
        return f"{where}: {self.message}"


class MissingTemplate(TemplateProblem):
    """Neither the database nor prompts/<language>/ has the template."""


@dataclass(frozen=True)
class ResolvedTemplate:
    name: str
    language: str
    stage_code: str | None  # the stage of the override that matched (None = all stages / file)
    body: str
    origin: str  # "db" or the file path
    recording_path: str | None = None  # admin's recorded WAV replacing the TTS


def _lang(ctx: Context) -> str:
    return str(ctx.get("language", "ru"))


@pass_context
def _f_money_words(ctx: Context, amount: Any, currency: str | None = None) -> str:
    return words.money_words(amount, currency or str(ctx["currency"]), _lang(ctx))


@pass_context
def _f_money_text(ctx: Context, amount: Any, currency: str | None = None) -> str:
    return words.money_text(amount, currency or str(ctx["currency"]), _lang(ctx))


@pass_context
def _f_date_words(ctx: Context, value: Any, case: str = "nom", with_year: bool = False) -> str:
    return "" if value is None else words.date_words(value, _lang(ctx), with_year=with_year, case=case)


@pass_context
def _f_date_text(ctx: Context, value: Any, with_year: bool = False) -> str:
    return "" if value is None else words.date_text(value, _lang(ctx), with_year=with_year)


@pass_context
def _f_number_words(ctx: Context, n: int, gender: str = "m") -> str:
    return words.number_words(int(n), _lang(ctx), gender)


@pass_context
def _f_ordinal_words(ctx: Context, n: int, case: str = "nom") -> str:
    return words.ordinal_words(int(n), _lang(ctx), case)


@pass_context
def _f_plural(ctx: Context, n: int, one: str, few: str, many: str | None = None) -> str:
    return words.plural_form(int(n), (one, few, many if many is not None else few), _lang(ctx))


def _f_ucfirst(value: Any) -> str:
    text = str(value)
    return text[:1].upper() + text[1:]


# Filters an admin can use beyond Jinja's built-ins, e.g. {{ amount | money_words }},
# {{ block_date | date_words('gen') }}, {{ days_overdue }} {{ days_overdue | plural('день', 'дня', 'дней') }}.
FILTERS: dict[str, Callable[..., Any]] = {
    "money_words": _f_money_words,
    "money_text": _f_money_text,
    "date_words": _f_date_words,
    "date_text": _f_date_text,
    "number_words": _f_number_words,
    "ordinal_words": _f_ordinal_words,
    "plural": _f_plural,
    "ucfirst": _f_ucfirst,
}


def make_environment() -> BoundedSandbox:
    """The sandbox templates run in; render only through `PromptStore` (it sets the budget)."""
    env = BoundedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters.update(FILTERS)
    env.bound_filters()
    for name in ("lipsum", "cycler", "joiner"):
        env.globals.pop(name, None)
    return env


_LAYOUT_SPACE = re.compile(r"[ \t\r\n\f\v]+")


def normalise(text: str) -> str:
    """Single spaces, no leading/trailing whitespace: template layout never reaches the TTS.
    No-break spaces (the digit groups of amount_text) are content and stay."""
    return _LAYOUT_SPACE.sub(" ", text).strip(" ")


def _template_line(exc: BaseException) -> int | None:
    """Line of the template where a render error happened (Jinja rewrites the traceback so the
    template's own frames carry template line numbers)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


class PromptStore:
    """Template sources (database override, then file) and the sandboxed renderer."""

    def __init__(self, prompts_dir: Path, sessions: sessionmaker[Session] | None = None,
                 limits: RenderLimits | None = None) -> None:
        self.prompts_dir = Path(prompts_dir)
        self._sessions = sessions
        self.limits = limits or RenderLimits()
        self._env = make_environment()
        self._compiled: dict[str, Template] = {}

    # -- sources -------------------------------------------------------------------------------

    def languages(self) -> list[str]:
        """Languages with a template directory (restricted to those words.py can speak)."""
        if not self.prompts_dir.is_dir():
            return []
        return sorted(p.name for p in self.prompts_dir.iterdir() if p.is_dir() and p.name in words.LANGUAGES)

    def file_path(self, name: str, language: str) -> Path:
        if not _NAME_RE.match(name):
            raise TemplateProblem(name, None, "template names are lowercase letters, digits and '_'", language)
        if language not in words.LANGUAGES:
            raise TemplateProblem(name, None, f"unsupported language (supported: {', '.join(words.LANGUAGES)})", language)
        return self.prompts_dir / language / f"{name}.j2"

    def file_names(self, language: str) -> list[str]:
        folder = self.prompts_dir / language
        return sorted(p.stem for p in folder.glob("*.j2")) if folder.is_dir() else []

    def file_source(self, name: str, language: str) -> str:
        path = self.file_path(name, language)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MissingTemplate(name, None, f"no template: neither an override nor {path}", language) from None
        except UnicodeDecodeError as exc:
            raise TemplateProblem(name, None, f"{path} is not UTF-8 text ({exc.reason})", language) from None

    def _override(self, session: Session, name: str, language: str, stage_code: str | None) -> PromptTemplate | None:
        candidates = [stage_code, None] if stage_code is not None else [None]
        for stage in candidates:
            stage_filter = PromptTemplate.stage_code.is_(None) if stage is None else PromptTemplate.stage_code == stage
            row = session.scalars(
                select(PromptTemplate).where(
                    PromptTemplate.language == language, PromptTemplate.name == name, stage_filter
                )
            ).first()
            if row is not None:
                return row
        return None

    def resolve(self, name: str, language: str, stage_code: str | None = None, session: Session | None = None) -> ResolvedTemplate:
        """The template in effect: DB override for (language, name, stage) -> (language, name, any
        stage) -> prompts/<language>/<name>.j2. Raises MissingTemplate when there is none."""
        path = self.file_path(name, language)
        row: PromptTemplate | None = None
        if session is not None:
            row = self._override(session, name, language, stage_code)
        elif self._sessions is not None:
            with self._sessions() as own:
                row = self._override(own, name, language, stage_code)
        if row is not None:
            return ResolvedTemplate(name, language, row.stage_code, row.body, "db", row.recording_path)
        return ResolvedTemplate(name, language, None, self.file_source(name, language), str(path))

    def resolve_all(self, names: Iterable[str], language: str, stage_code: str | None, session: Session) -> dict[str, ResolvedTemplate]:
        """resolve() for many names with one query (a call prepares ~25 phrases). Names with
        neither an override nor a file are left out; the caller decides which are required."""
        rows = session.scalars(select(PromptTemplate).where(PromptTemplate.language == language)).all()
        best: dict[str, PromptTemplate] = {}
        for row in rows:
            if row.stage_code is None and row.name not in best:
                best[row.name] = row
        for row in rows:  # a stage's own override beats the all-stages one
            if stage_code is not None and row.stage_code == stage_code:
                best[row.name] = row
        out: dict[str, ResolvedTemplate] = {}
        for name in names:
            override = best.get(name)
            if override is not None:
                out[name] = ResolvedTemplate(name, language, override.stage_code, override.body, "db", override.recording_path)
                continue
            try:
                out[name] = ResolvedTemplate(name, language, None, self.file_source(name, language), str(self.file_path(name, language)))
            except MissingTemplate:
                continue
        return out

    def source(self, name: str, language: str, stage_code: str | None = None) -> str:
        return self.resolve(name, language, stage_code).body

    # -- checking and rendering ----------------------------------------------------------------

    def _compile(self, body: str, name: str, language: str) -> Template:
        cached = self._compiled.get(body)
        if cached is not None:
            return cached
        try:
            tree = self._env.parse(body)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(name, exc.lineno, f"syntax error: {exc.message}", language,
                                  key="syntax", detail=exc.message or "") from None
        for node_type in (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport):
            found = tree.find(node_type)
            if found is not None:
                raise TemplateProblem(name, found.lineno, "extends/include/import are not allowed", language,
                                      key="no_include")
        try:
            declared = meta.find_undeclared_variables(tree)  # compiles: finds unknown filters too
        except TemplateSyntaxError as exc:
            raise TemplateProblem(name, exc.lineno, exc.message or "syntax error", language,
                                  key="syntax", detail=exc.message or "") from None
        unknown = declared - set(CONTEXT_DOC) - set(self._env.globals)
        if unknown:
            first = min(unknown, key=lambda v: (self._first_line(tree, v), v))
            hint = difflib.get_close_matches(first, CONTEXT_DOC, n=1)
            message = f"unknown variable '{first}'" + (f" (did you mean '{hint[0]}'?)" if hint else "")
            raise TemplateProblem(name, self._first_line(tree, first), message, language,
                                  key="unknown_variable_hint" if hint else "unknown_variable",
                                  params={"name": first, "hint": hint[0] if hint else ""})
        try:
            # compiled from the checked tree, with every loop and ~ routed through the budget
            code = self._env.compile(self._env.bound_loops(tree))
            template = self._env.template_class.from_code(self._env, code, self._env.make_globals(None), None)
        except TemplateSyntaxError as exc:  # e.g. an unknown filter, found at compile time
            raise TemplateProblem(name, exc.lineno, exc.message or "syntax error", language,
                                  key="syntax", detail=exc.message or "") from None
        if len(self._compiled) > 1024:  # bodies are few; this only bounds a pathological editor session
            self._compiled.clear()
        self._compiled[body] = template
        return template

    @staticmethod
    def _first_line(tree: nodes.Template, variable: str) -> int:
        lines = [n.lineno for n in tree.find_all(nodes.Name) if n.name == variable and n.ctx == "load"]
        return min(lines) if lines else 1

    def render_string(self, body: str, language: str, context: Mapping[str, Any], name: str = "inline") -> str:
        """Render a template body; the whole normalised text or TemplateProblem."""
        template = self._compile(body, name, language)
        try:
            text = self._render_bounded(template, context)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(name, exc.lineno, exc.message or "syntax error", language,
                                  key="syntax", detail=exc.message or "") from None
        except Exception as exc:  # anything a template can raise: undefined, security, filter errors
            message = str(exc) or type(exc).__name__
            # the sandbox's limits have one text in the UI; which limit is the (English) detail
            key = "limit" if isinstance(exc, RenderLimitExceeded) else "render"
            raise TemplateProblem(name, _template_line(exc), message, language, key=key, detail=message) from None
        text = normalise(text)
        if len(text) > MAX_TEXT_CHARS:
            raise TemplateProblem(name, None, f"renders to {len(text)} characters (max {MAX_TEXT_CHARS})", language,
                                  key="too_long", params={"n": len(text), "max": MAX_TEXT_CHARS})
        return text

    def _render_bounded(self, template: Template, context: Mapping[str, Any]) -> str:
        """Render inside the budget, streaming: the output is refused as it passes the cap, not
        after a runaway loop has built all of it."""
        cap = self.limits.max_output
        parts: list[str] = []
        size = 0
        with self.limits.budget():
            for part in template.generate(dict(context)):
                size += len(part)
                if size > cap:
                    raise RenderLimitExceeded(f"renders over {cap} characters")
                parts.append(part)
        return "".join(parts)

    def render(
        self,
        name: str,
        language: str,
        context: Mapping[str, Any],
        stage_code: str | None = None,
        session: Session | None = None,
    ) -> str:
        return self.render_string(self.resolve(name, language, stage_code, session).body, language, context, name)

    def validate(self, body: str, name: str = "template", language: str = "ru") -> None:
        """Refuse a template that would fail during a call: syntax errors, unknown variables,
        sandbox violations, filter errors; it is test-rendered with a full and with a sparse
        (no dates, no service, no reasons, keys disabled) sample context."""
        if language not in words.LANGUAGES:
            raise TemplateProblem(name, None, f"unsupported language (supported: {', '.join(words.LANGUAGES)})", language)
        self._compile(body, name, language)
        for sparse in (False, True):
            self.render_string(body, language, sample_context(language, sparse=sparse), name)

    def check_files(self, languages: list[str] | None = None, required: tuple[str, ...] = ()) -> list[TemplateProblem]:
        """Problems of every template file (and every required name missing) per language."""
        problems: list[TemplateProblem] = []
        for language in languages or self.languages():
            present = set(self.file_names(language))
            for name in required:
                if name not in present:
                    problems.append(MissingTemplate(name, None, "missing (every language needs this template)", language))
            for name in sorted(present):
                try:
                    self.validate(self.file_source(name, language), name, language)
                except TemplateProblem as problem:
                    problems.append(problem)
        return problems
