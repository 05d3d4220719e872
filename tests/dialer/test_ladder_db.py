"""The ladder tick against the database (SQLite and PostgreSQL): idempotent side effects."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from ivr.db.models import Account, BlockListEntry, CallbackTask, DebtCase, Promise
from ivr.dialer.ladder import CaseView, advance_cases, apply_decision, decide
from ivr.dialer.policy import load_rules
from ivr.wiring import Database
from tests.dialer.conftest import add_case

UTC = dt.UTC


def moscow_noon(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(9), tzinfo=UTC)  # 12:00 in Moscow


def test_ladder_tick_end_to_end(any_db: Database) -> None:
    opened = dt.date(2026, 3, 1)
    block = dt.date(2026, 3, 20)
    with any_db.sessions.begin() as s:
        fresh = add_case(s, stage_code=None, opened_on=opened, block_date=block).id
        exhausted = add_case(s, stage_code="reminder", attempts_in_stage=3, opened_on=opened, block_date=block).id
        blocking = add_case(s, stage_code="final_warning", opened_on=opened, block_date=block).id
        old = add_case(s, stage_code="firm", opened_on=opened - dt.timedelta(days=95), block_date=block).id
        promised = add_case(s, state="promised", stage_code="reminder", opened_on=opened, block_date=block)
        s.add(Promise(debt_case_id=promised.id, promised_date=dt.date(2026, 3, 3)))
        promised_id = promised.id
        paid = add_case(s, stage_code="reminder", owed="0", opened_on=opened, block_date=block).id
        far_east = add_case(s, tz="Asia/Vladivostok", stage_code=None, opened_on=dt.date(2026, 3, 3)).id

    # 4 March 2026: reminder for the fresh case; the exhausted one waits for firm (8 March)
    with any_db.sessions.begin() as s:
        report = advance_cases(s, load_rules(s), moscow_noon(dt.date(2026, 3, 4)))
    assert report.changed >= 5
    with any_db.sessions() as s:
        cases = {c.id: c for c in s.scalars(select(DebtCase))}
        assert cases[fresh].stage_code == "reminder" and cases[fresh].stage_entered_at is not None
        assert cases[exhausted].next_attempt_at == dt.datetime(2026, 3, 7, 21, 0)  # 8 March 00:00 MSK
        assert cases[old].state == "retention"
        assert cases[promised_id].state == "active" and cases[promised_id].promise_broken
        assert s.scalar(select(Promise.status)) == "broken"
        assert cases[paid].state == "paid" and cases[paid].closed_at is not None
        # 4 March 12:00 MSK is 19:00 in Vladivostok, still 4 March: day 1 starts the reminder
        assert cases[far_east].stage_code == "reminder"
        assert s.scalar(select(func.count()).select_from(CallbackTask).where(CallbackTask.queue == "retention")) == 1

    # 20 March: the block date. The case entering "blocked" goes on the block list once.
    for _ in range(2):
        with any_db.sessions.begin() as s:
            advance_cases(s, load_rules(s), moscow_noon(block))
    with any_db.sessions() as s:
        assert s.get(DebtCase, blocking).stage_code == "blocked"  # type: ignore[union-attr]
        entries = s.scalars(select(BlockListEntry)).all()
        assert {e.debt_case_id for e in entries} >= {blocking}
        assert len(entries) == len({e.account_id for e in entries})
        account = s.get(Account, s.get(DebtCase, blocking).account_id)  # type: ignore[union-attr]
        assert account is not None and account.blocked_at is not None
        assert s.scalar(select(func.count()).select_from(CallbackTask).where(CallbackTask.queue == "retention")) == 1


def test_blocked_stage_exhausted_hands_over_to_retention_once(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        case_id = add_case(s, stage_code="blocked", attempts_in_stage=3, opened_on=dt.date(2026, 3, 1),
                           block_date=dt.date(2026, 3, 20)).id
    for _ in range(2):
        with any_db.sessions.begin() as s:
            advance_cases(s, load_rules(s), moscow_noon(dt.date(2026, 3, 25)))
    with any_db.sessions() as s:
        assert s.get(DebtCase, case_id).state == "retention"  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).select_from(CallbackTask).where(CallbackTask.debt_case_id == case_id)) == 1


def test_apply_decision_is_compare_and_set(any_db: Database) -> None:
    with any_db.sessions.begin() as s:
        case = add_case(s, stage_code="reminder", opened_on=dt.date(2026, 3, 1))
        case_id, account_id = case.id, case.account_id
        stale = CaseView(state="active", opened_on=case.opened_on, amount_owed=Decimal("1500"),
                         block_date=dt.date(2026, 3, 20), stage_code="reminder", attempts_in_stage=0)
    with any_db.sessions.begin() as s:
        rules = load_rules(s)
    from zoneinfo import ZoneInfo

    decision = decide(stale, rules, dt.date(2026, 3, 9), ZoneInfo("Europe/Moscow"))
    assert decision.stage_code == "firm"
    with any_db.sessions.begin() as s:  # a call result arrived meanwhile
        s.get(DebtCase, case_id).attempts_in_stage = 1  # type: ignore[union-attr]
    with any_db.sessions.begin() as s:
        assert not apply_decision(s, case_id, account_id, stale, decision, moscow_noon(dt.date(2026, 3, 9)))
    with any_db.sessions.begin() as s:
        report = advance_cases(s, rules, moscow_noon(dt.date(2026, 3, 9)))
        assert report.changed == 1
    with any_db.sessions() as s:
        assert s.get(DebtCase, case_id).stage_code == "firm"  # type: ignore[union-attr]


def test_quiet_cases_are_not_even_examined(db: Database) -> None:
    with db.sessions.begin() as s:
        for _ in range(5):
            add_case(s, stage_code="reminder", opened_on=dt.date(2026, 3, 1))
    with db.sessions.begin() as s:
        report = advance_cases(s, load_rules(s), moscow_noon(dt.date(2026, 3, 4)))
    assert report.examined == 0


def _refuse_updates_of_case(database: Database, case_id: int) -> None:
    """A real database error on one case's write (a trigger), as a broken row would cause."""
    with database.sessions.begin() as s:
        if database.engine.dialect.name == "sqlite":
            s.execute(text(f"CREATE TRIGGER refuse_case BEFORE UPDATE ON debt_cases WHEN OLD.id = {case_id} "
                           "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"))
        else:
            s.execute(text(f"CREATE FUNCTION refuse_case() RETURNS trigger AS $$ BEGIN IF OLD.id = {case_id} "
                           "THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; RETURN NEW; END $$ "
                           "LANGUAGE plpgsql"))
            s.execute(text("CREATE TRIGGER refuse_case BEFORE UPDATE ON debt_cases FOR EACH ROW "
                           "EXECUTE FUNCTION refuse_case()"))


def test_one_bad_case_never_stops_the_tick_for_the_others(any_db: Database, caplog: pytest.LogCaptureFixture) -> None:
    opened = dt.date(2026, 3, 1)
    with any_db.sessions.begin() as s:
        before = add_case(s, stage_code=None, opened_on=opened).id
        # 01.01.0001 minus the final warning's two days leaves the calendar (OverflowError)
        ancient = add_case(s, stage_code=None, opened_on=opened, block_date=dt.date(1, 1, 1)).id
        refused = add_case(s, stage_code=None, opened_on=opened).id
        after = add_case(s, stage_code=None, opened_on=opened).id
        far = add_case(s, stage_code=None, opened_on=opened, block_date=dt.date(9999, 12, 31)).id
    _refuse_updates_of_case(any_db, refused)
    with caplog.at_level(logging.ERROR, logger="ivr.dialer.ladder"), any_db.sessions.begin() as s:
        report = advance_cases(s, load_rules(s), moscow_noon(dt.date(2026, 3, 4)))
    assert report.failed == 2 and sorted(report.failed_ids) == sorted([ancient, refused])
    assert report.changed == 3
    with any_db.sessions() as s:
        stages = {c.id: c.stage_code for c in s.scalars(select(DebtCase))}
    assert stages == {before: "reminder", ancient: None, refused: None, after: "reminder", far: "reminder"}
    # one traceback per tick (the same rows fail every tick), and a summary naming every case
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and f"case {ancient} " in tracebacks[0].getMessage()
    summary = [r.getMessage() for r in caplog.records if "2 case(s) skipped" in r.getMessage()]
    assert len(summary) == 1 and str(ancient) in summary[0] and str(refused) in summary[0]


def test_a_case_changed_during_a_batched_chunk_is_a_conflict_and_the_others_are_staged(
    any_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk's plain decisions go in one executemany; when one case changed between the read
    and the write (a call ended and counted an attempt), that batch matches one row fewer: it is
    undone and redone case by case, so the changed case is left alone and the others are staged."""
    from ivr.dialer import ladder

    opened = dt.date(2026, 3, 1)
    with any_db.sessions.begin() as s:
        ids = [add_case(s, stage_code=None, opened_on=opened, block_date=dt.date(2026, 3, 20)).id for _ in range(5)]
    raced = ids[2]
    read_promises, batched = ladder.pending_promises, ladder._apply_planned
    tries: list[int] = []

    def race_after_the_read(session, case_ids):  # type: ignore[no-untyped-def]
        # runs after the chunk read its cases, before its savepoint: another process's write
        session.execute(text("UPDATE debt_cases SET attempts_in_stage = 7 WHERE id = :id"), {"id": raced})
        return read_promises(session, case_ids)

    def counted(session, planned, now):  # type: ignore[no-untyped-def]
        tries.append(len(planned))
        return batched(session, planned, now)

    monkeypatch.setattr(ladder, "pending_promises", race_after_the_read)
    monkeypatch.setattr(ladder, "_apply_planned", counted)
    with any_db.sessions.begin() as s:
        report = advance_cases(s, load_rules(s), moscow_noon(dt.date(2026, 3, 4)))
    assert tries == [5]  # one batched try; the retry went case by case
    assert (report.changed, report.conflicts, report.failed) == (4, 1, 0)
    with any_db.sessions() as s:
        cases = {c.id: c for c in s.scalars(select(DebtCase).where(DebtCase.id.in_(ids)))}
    assert cases[raced].stage_code is None and cases[raced].attempts_in_stage == 7
    assert all(cases[i].stage_code == "reminder" and cases[i].stage_entered_at is not None for i in ids if i != raced)


def _committed_stages(db: Database, ids: list[int]) -> list[str | None]:
    """What another connection sees: only committed changes."""
    with db.sessions() as other:
        return [other.get(DebtCase, i).stage_code for i in ids]  # type: ignore[union-attr]


def _watch_chunks(db: Database, monkeypatch, module, count: int) -> tuple[list[int], list[list[str | None]]]:  # type: ignore[no-untyped-def]
    """`count` unstaged cases, and what another connection saw committed before each chunk that
    `module`'s pass advanced."""
    import ivr.dialer.ladder as ladder

    with db.sessions.begin() as s:
        ids = [add_case(s, stage_code=None).id for _ in range(count)]
    seen: list[list[str | None]] = []
    real = ladder._advance_chunk

    def spy(session, rules, now, chunk_ids, report):  # type: ignore[no-untyped-def]
        seen.append(_committed_stages(db, ids))
        real(session, rules, now, chunk_ids, report)

    monkeypatch.setattr(module, "_advance_chunk", spy)
    return ids, seen


def test_a_pass_with_commit_commits_each_chunk_before_the_next(any_db: Database, monkeypatch) -> None:
    # A pass over a million cases takes minutes: in one transaction, PostgreSQL would hold the
    # row lock of every changed case until its end, and a call's promise on one of them (the
    # facts writer) would wait for the whole pass
    import ivr.dialer.ladder as ladder

    ids, seen = _watch_chunks(any_db, monkeypatch, ladder, 3)
    with any_db.sessions() as s:
        report = advance_cases(s, load_rules(s), moscow_noon(dt.date(2026, 3, 4)), chunk=1, commit=True)
    assert report.changed == 3
    # before each chunk, the chunks before it are committed
    assert seen == [[None, None, None], ["reminder", None, None], ["reminder", "reminder", None]]
    assert _committed_stages(any_db, ids) == ["reminder"] * 3


def test_staging_after_an_import_commits_each_chunk(any_db: Database, monkeypatch) -> None:
    import ivr.dialer.staging as staging

    ids, seen = _watch_chunks(any_db, monkeypatch, staging, 2)
    monkeypatch.setattr(staging, "CHUNK", 1)
    report = staging.stage_new_cases(any_db.sessions, "Europe/Moscow", moscow_noon(dt.date(2026, 3, 4)))
    assert report.changed == 2
    assert seen == [[None, None], ["reminder", None]]
    assert _committed_stages(any_db, ids) == ["reminder", "reminder"]
