"""AudioPreparer: every phrase a call may play is on disk before the call, shared ones reused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ivr.config import Settings
from ivr.db.models import Account, DebtCase, Promise, PromptTemplate, Reason
from ivr.db.options import get_options
from ivr.prompts import CALL_PHRASES
from ivr.prompts.context import promise_horizon
from ivr.prompts.render import PromptStore
from ivr.voice.audio import wav_info
from ivr.voice.cache import AudioCache
from ivr.voice.prepare import AudioPreparer, CallAudio
from ivr.wiring import Database
from tests.voice.helpers import CountingEngine, write_tone_wav

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
TODAY = dt.date(2025, 11, 18)
BLOCK = dt.date(2025, 11, 25)


def make_case(session: Session, external_id: str, amount: str, language: str = "ru", **case_kw: object) -> tuple[Account, DebtCase]:
    account = Account(external_id=external_id, holder_name=f"Абонент {external_id}", service_name="охрана квартиры",
                      balance=Decimal(amount), currency="RUB", due_date=dt.date(2025, 11, 10), block_date=BLOCK,
                      language=language)
    session.add(account)
    session.flush()
    case = DebtCase(account_id=account.id, opened_on=dt.date(2025, 11, 10), amount_initial=Decimal(amount),
                    amount_owed=Decimal(amount), currency="RUB", stage_code="firm", **case_kw)
    session.add(case)
    session.flush()
    return account, case


@pytest.fixture
def preparer(db: Database, audio_dir: Path, engine: CountingEngine, tmp_path: Path) -> AudioPreparer:
    settings = Settings(recordings_dir=tmp_path / "recordings")
    return AudioPreparer(PromptStore(PROMPTS, db.sessions), AudioCache(audio_dir, engine), settings)


def prepare(preparer: AudioPreparer, session: Session, account: Account, case: DebtCase | None, stage: str = "firm",
            language: str = "ru") -> CallAudio:
    options = get_options(session)
    horizon = promise_horizon(TODAY, BLOCK, options)
    return preparer.prepare(session, account, case, stage, language, TODAY, horizon=horizon, options=options)


def assert_playable(name: str) -> None:
    info = wav_info(Path(name + ".wav"))
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    assert info.duration_s > 0.3


def test_prepare_renders_every_phrase_readback_and_reply(db: Database, preparer: AudioPreparer, engine: CountingEngine) -> None:
    with db.sessions.begin() as session:
        account, case = make_case(session, "A-1", "1800.50")
        audio = prepare(preparer, session, account, case)
        reasons = list(session.scalars(select(Reason).order_by(Reason.position)))

    assert audio.language == "ru" and audio.message_name == "debt_firm"
    assert set(audio.phrases) == set(CALL_PHRASES) | {"debt_firm", "debt_message"}
    assert "одна тысяча восемьсот рублей пятьдесят копеек" in audio.texts["debt_firm"]
    assert audio.message == audio.get("debt_firm") == audio.get("debt_message")
    # readbacks: every date from today to the horizon (block date + 5 days), each its own file
    days = [TODAY + dt.timedelta(days=i) for i in range((BLOCK + dt.timedelta(days=5) - TODAY).days + 1)]
    assert list(audio.readbacks) == days
    assert len(set(audio.readbacks.values())) == len(days)
    assert "двадцать пятого ноября" in audio.texts["readback:2025-11-25"]
    # reasons in menu order; replies only for the reasons that have one
    assert audio.reasons == [(r.key, r.code, r.actionable, r.route) for r in reasons]
    assert set(audio.reason_replies) == {r.code for r in reasons if r.replies.get("ru")}
    assert "забыл или не успел оплатить — нажмите 1" in audio.texts["reason_menu"].lower()
    for name in [*audio.phrases.values(), *audio.readbacks.values(), *audio.reason_replies.values()]:
        assert_playable(name)
    # nothing is synthesised twice within one preparation
    assert len(engine.calls) == len(set(engine.calls))


def test_second_account_reuses_shared_audio(db: Database, preparer: AudioPreparer, engine: CountingEngine) -> None:
    with db.sessions.begin() as session:
        first_account, first_case = make_case(session, "B-1", "500")
        second_account, second_case = make_case(session, "B-2", "2001.02")
        first = prepare(preparer, session, first_account, first_case)
        engine.calls.clear()
        second = prepare(preparer, session, second_account, second_case)
    # only the account's own phrases are new: the debt message (amount) and the identity (name)
    assert {text for text, _ in engine.calls} == {second.texts["debt_firm"], second.texts["identity"]}
    for name in CALL_PHRASES:
        if name != "identity":
            assert first.phrases[name] == second.phrases[name], name
    assert first.readbacks == second.readbacks
    assert first.phrases["debt_firm"] != second.phrases["debt_firm"]
    assert "две тысячи один рубль две копейки" in second.texts["debt_firm"]


def test_broken_promise_message_names_the_missed_date(db: Database, preparer: AudioPreparer) -> None:
    with db.sessions.begin() as session:
        account, case = make_case(session, "C-1", "300", promise_broken=True)
        session.add(Promise(debt_case_id=case.id, promised_date=dt.date(2025, 11, 14), status="broken"))
        session.flush()
        audio = prepare(preparer, session, account, case)
    assert audio.message_name == "broken_promise"
    assert audio.get("debt_message") == audio.get("broken_promise")
    assert "Вы обещали оплатить четырнадцатого ноября" in audio.texts["broken_promise"]


def test_overrides_recordings_and_reply_variables(db: Database, preparer: AudioPreparer, tmp_path: Path) -> None:
    (tmp_path / "recordings").mkdir()  # Settings.recordings_dir of the preparer fixture
    recording = write_tone_wav(tmp_path / "recordings" / "greeting.wav", 440, 44100, 1.0, channels=2)
    with db.sessions.begin() as session:
        account, case = make_case(session, "D-1", "42")
        session.add(PromptTemplate(language="ru", name="greeting", stage_code=None, body="Привет от {{ company }}.",
                                   recording_path="greeting.wav"))
        session.add(PromptTemplate(language="ru", name="closing", stage_code="firm", body="Всего доброго, {{ holder_name }}."))
        session.add(PromptTemplate(language="ru", name="menu", stage_code=None, body="{{ 'x' * 100000 }}"))  # broken
        forgot = session.scalars(select(Reason).where(Reason.code == "forgot")).one()
        forgot.replies = {**forgot.replies, "ru": "Оплатите до {{ block_date_words_gen }}."}
        money = session.scalars(select(Reason).where(Reason.code == "money_trouble")).one()
        money.replies = {**money.replies, "ru": "Сумма {{ amont }}."}  # broken: skipped, not fatal
        session.flush()
        audio = prepare(preparer, session, account, case)
    assert recording.is_file()
    assert "/recordings/" in audio.phrases["greeting"]  # the admin's recording replaces the TTS
    assert_playable(audio.phrases["greeting"])
    assert audio.texts["closing"] == "Всего доброго, Абонент D-1."
    assert audio.texts["menu"].startswith("Чтобы назвать дату оплаты")  # fell back to the file
    assert audio.texts["reply:forgot"] == "Оплатите до двадцать пятого ноября."
    assert "money_trouble" not in audio.reason_replies


def test_missing_recording_falls_back_to_speech(db: Database, preparer: AudioPreparer) -> None:
    with db.sessions.begin() as session:
        account, case = make_case(session, "E-1", "10")
        session.add(PromptTemplate(language="ru", name="closing", stage_code=None, body="До свидания!",
                                   recording_path="/nonexistent/closing.wav"))
        session.flush()
        audio = prepare(preparer, session, account, case)
    assert "/recordings/" not in audio.phrases["closing"]
    assert_playable(audio.phrases["closing"])


def test_language_fallback_unknown_stage_and_clear_key_errors(db: Database, preparer: AudioPreparer) -> None:
    with db.sessions.begin() as session:
        account, case = make_case(session, "F-1", "10", language="de")
        with pytest.raises(ValueError, match="unknown ladder stage 'nope'"):
            prepare(preparer, session, account, case, stage="nope", language="de")
        audio = prepare(preparer, session, account, case, stage="reminder", language="de")
    assert audio.language == "ru" and audio.message_name == "debt_soft"
    with pytest.raises(KeyError, match="no prepared audio for phrase 'debt_final'"):
        audio.get("debt_final")
    with pytest.raises(KeyError, match="no readback prepared for 2026-01-01"):
        audio.readback(dt.date(2026, 1, 1))


def test_english_call_without_case(db: Database, preparer: AudioPreparer) -> None:
    with db.sessions.begin() as session:
        account, _case = make_case(session, "G-1", "1800.50", language="en")
        audio = prepare(preparer, session, account, None, stage="final_warning", language="en")
    assert audio.message_name == "debt_final"
    assert "one thousand eight hundred roubles and fifty kopecks" in audio.texts["debt_final"]
    assert_playable(audio.message)


@pytest.mark.parametrize("block_date", [dt.date(9999, 12, 31), dt.date(1, 1, 1)])
def test_dates_at_the_ends_of_the_calendar_still_give_a_call(db: Database, preparer: AudioPreparer,
                                                             block_date: dt.date) -> None:
    # rejected at import since, but such a date may already be in a database: the promise horizon
    # overflowed and the account's audio could never be prepared
    with db.sessions.begin() as session:
        account, case = make_case(session, "A-9999", "100")
        account.block_date = block_date
        options = get_options(session)
        horizon = promise_horizon(TODAY, block_date, options)
        audio = preparer.prepare(session, account, case, "firm", "ru", TODAY, horizon=horizon, options=options)
    assert min(audio.readbacks) == TODAY and max(audio.readbacks) == horizon
    assert horizon == (TODAY + dt.timedelta(days=int(options["promise_horizon_max_days"])) if block_date.year == 9999
                       else TODAY)
