"""Codes shown by their labels: a page never prints a raw code (`retention`, `keypad`, `blocked`)
where the catalogue has a text for it.

A code's label is the catalogue entry `<prefix><code>` (`queue_retention`, `optout_source_keypad`,
`ladder_stage_blocked`); a code the catalogue does not know (a queue or stage an admin added
later) is shown as it is, which is all the page can say about it."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.web import i18n

QUEUE_PREFIX = "queue_"
STAGE_PREFIX = "ladder_stage_"


def label(lang: str, prefix: str, code: object) -> str:
    """The label of `code` in `lang`, or the code itself when the catalogue has none."""
    if code is None or code == "":
        return ""
    key = f"{prefix}{code}"
    return i18n.translate(lang, key) if i18n.has_key(key) else str(code)


class Labeller:
    """`label(prefix, code)` and `label.stage(code, name)` for templates, bound to the page's
    language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, prefix: str, code: object) -> str:
        return label(self.lang, prefix, code)

    def stage(self, code: str | None, name: str | None = None) -> str:
        return stage_name(self.lang, code, name) if code else ""


def labeller(lang: str) -> Labeller:
    return Labeller(lang)


def stage_name(lang: str, code: str, name: str | None) -> str:
    """A ladder stage's name in `lang`. The seeded stages are named in English in the settings
    file; while a stage still has that seeded name, its catalogue label is shown instead. A name
    the admin gave it is their text and is shown as given."""
    key = f"{STAGE_PREFIX}{code}"
    if i18n.has_key(key) and (not name or name == i18n.EN.get(key)):
        return i18n.translate(lang, key)
    return name or code


def catalogue_queues() -> list[str]:
    """The queues the catalogue has labels for (the ones the robot and the seed data route to)."""
    return sorted(k[len(QUEUE_PREFIX):] for k in i18n.RU if k.startswith(QUEUE_PREFIX))


def known_queues(session: Session, extra: Iterable[str | None] = ()) -> list[str]:
    """Every queue an admin may choose: the catalogue's, and any already used by a reason, a user
    or a task (so an older free-text queue stays selectable and visible)."""
    from ivr.db.models import CallbackTask, Reason, User

    found = set(catalogue_queues())
    found.update(q for q in session.scalars(select(Reason.route).distinct()) if q)
    found.update(q for q in session.scalars(select(CallbackTask.queue).distinct()) if q)
    for queues in session.scalars(select(User.queues)):
        found.update(q for q in (queues or []) if q)
    found.update(q for q in extra if q)
    labelled = sorted(q for q in found if i18n.has_key(f"{QUEUE_PREFIX}{q}"))
    return labelled + sorted(found - set(labelled))


def queue_options(lang: str, queues: Iterable[str]) -> list[tuple[str, str]]:
    """(code, label) pairs for a select."""
    return [(q, label(lang, QUEUE_PREFIX, q)) for q in queues]
