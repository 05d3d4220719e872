"""The Core `Table` of the ORM models that prebuilt Core statements use (the call facts, the
outbox payloads), typed once here instead of `cast(Table, Model.__table__)` in every module."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table

from ivr.db.models import (
    Account,
    CallAttempt,
    CallStep,
    DebtCase,
    OptOut,
    Outcome,
    PhoneNumber,
    Promise,
    Reason,
)

ACCOUNTS = cast(Table, Account.__table__)
ATTEMPTS = cast(Table, CallAttempt.__table__)
CASES = cast(Table, DebtCase.__table__)
OUTCOMES = cast(Table, Outcome.__table__)
STEPS = cast(Table, CallStep.__table__)
PROMISES = cast(Table, Promise.__table__)
REASONS = cast(Table, Reason.__table__)
PHONES = cast(Table, PhoneNumber.__table__)
OPT_OUTS = cast(Table, OptOut.__table__)
