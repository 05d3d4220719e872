"""Voice packs end to end: a pack of recordings is checked, composed into phrases with the right
fragments, falls back to espeak-ng for what it lacks, and every phrase ends at one level.

The "recordings" here are tones, one frequency per fragment, so a test can tell which fragment
played; the synthetic parts are real espeak-ng (CountingEngine), so the test also shows what
the speech engine was and was not asked to say."""

from __future__ import annotations

import datetime as dt
import shutil
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from ivr.cli import main
from ivr.config import Settings
from ivr.prompts import fragments
from ivr.prompts.context import sample_context
from ivr.prompts.words import date_words, money_words
from ivr.voice.audio import (
    PEAK_LIMIT_DBFS,
    TARGET_LEVEL_DBFS,
    AudioSegment,
    load_wav,
    speech_level_dbfs,
    wav_info,
)
from ivr.voice.cache import AudioCache
from ivr.voice.compose import (
    COMMA_GAP_MS,
    RECORDED,
    SENTENCE_GAP_MS,
    SYNTHETIC,
    WORD_GAP_MS,
    PhraseVoice,
    describe,
    plan_phrase,
)
from ivr.voice.pack import (
    MANIFEST,
    SYNTHETIC_DIR,
    VoicePackError,
    check_pack,
    load_pack,
    make_synthetic_pack,
    pack_from_settings,
)
from tests.voice.helpers import CountingEngine, tone, write_tone_wav
from tests.voice.pack_helpers import write_tone_pack


@pytest.fixture(scope="module")
def tone_pack_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tone_pack(tmp_path_factory.mktemp("tone-pack") / "pack")


@pytest.fixture
def tone_pack(tone_pack_master: Path, tmp_path: Path) -> Path:
    """A private copy each test may damage."""
    return Path(shutil.copytree(tone_pack_master, tmp_path / "pack"))


def level_ok(segment: AudioSegment, tolerance: float = 0.5) -> bool:
    """At the target level, or as close as the peak limit lets it (then its peaks touch it)."""
    level = speech_level_dbfs(segment)
    if abs(level - TARGET_LEVEL_DBFS) <= tolerance:
        return True
    return level < TARGET_LEVEL_DBFS and segment.max_dBFS >= PEAK_LIMIT_DBFS - 0.1


# -- checking a pack -----------------------------------------------------------------------------

def test_a_complete_pack_checks_clean(tone_pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = check_pack(tone_pack)
    assert report.complete and report.present == {"ru": 121, "uk": 121}
    assert main(["--env-file", "/nonexistent", "voice-pack", "check", str(tone_pack)]) == 0
    assert "ru: 121 of 121 fragments usable, 0 missing" in capsys.readouterr().out


def test_check_names_missing_unusable_and_unknown_fragments(tone_pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tone_pack / "ru" / "num_800.wav").unlink()  # declared, file gone
    manifest = (tone_pack / MANIFEST).read_text(encoding="utf-8")
    manifest = manifest.replace('month_11 = { file = "uk/month_11.wav", text = "листопада" }\n', "")  # not declared
    manifest = manifest.replace("\n[uk]", 'typo_fragment = { file = "ru/num_0.wav" }\n\n[uk]')
    (tone_pack / MANIFEST).write_text(manifest, encoding="utf-8")
    AudioSegment.silent(500, frame_rate=8000).export(tone_pack / "ru" / "month_3.wav", format="wav")  # silent take
    write_tone_wav(tone_pack / "ru" / "rouble_many.wav", 440, 8000, 6.0)  # a whole sentence, not a word
    write_tone_wav(tone_pack / "ru" / "num_5.wav", 440, 44100, 0.3, channels=2)  # usable, but not 8 kHz mono

    report = check_pack(tone_pack)
    assert not report.complete
    assert report.missing == {"ru": ["num_800"], "uk": ["month_11"]}
    assert any(p.startswith("ru.month_3") and "silent" in p for p in report.problems)
    assert any(p.startswith("ru.rouble_many") and "6.0 s" in p for p in report.problems)
    assert any(w.startswith("ru.num_5") and "44100 Hz" in w for w in report.warnings)
    assert report.unknown == ["ru.typo_fragment"]
    assert report.present["ru"] == 121 - 3

    assert main(["--env-file", "/nonexistent", "voice-pack", "check", str(tone_pack)]) == 1
    out = capsys.readouterr().out
    assert 'missing ru.num_800: "восемьсот"' in out and 'missing uk.month_11: "листопада"' in out
    assert "incomplete" in out


def test_a_broken_manifest_is_refused_and_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(VoicePackError, match="not found"):
        load_pack(tmp_path)
    (tmp_path / MANIFEST).write_text('[ru]\nnum_0 = { file = "../../etc/passwd" }\n', encoding="utf-8")
    with pytest.raises(VoicePackError, match="outside the pack"):
        load_pack(tmp_path)
    (tmp_path / MANIFEST).write_text("[ru\n", encoding="utf-8")
    settings = SimpleNamespace(extra={"IVR_VOICE_PACK": str(tmp_path)}, audio_cache_dir=tmp_path)
    assert pack_from_settings(settings) is None  # calls go on in the synthetic voice
    assert "not used" in caplog.text
    assert pack_from_settings(SimpleNamespace(extra={}, audio_cache_dir=tmp_path)) is None


# -- planning a phrase (pure) ----------------------------------------------------------------------

AMOUNT = "одна тысяча восемьсот рублей пятьдесят копеек"
AMOUNT_IDS = ["num_1_f", "thousand_one", "num_800", "rouble_many", "num_50", "kopeck_many"]
DATE = "двадцать пятого ноября"
DATE_IDS = ["num_20", "ord_5_gen", "month_11"]


def test_plan_cuts_the_phrase_into_recorded_and_synthetic_parts() -> None:
    text = f"Ваш долг {AMOUNT}. Оплатите до {DATE}, пожалуйста."
    everything = set(fragments.catalogue("ru"))
    parts = plan_phrase(text, "ru", {AMOUNT: AMOUNT_IDS, DATE: DATE_IDS}, everything)
    assert [(p.kind, p.text) for p in parts] == [
        (SYNTHETIC, "Ваш долг"),
        *[(RECORDED, w) for w in AMOUNT.split()],
        (SYNTHETIC, "Оплатите до"),
        (RECORDED, "двадцать"), (RECORDED, "пятого"), (RECORDED, "ноября"),
        (SYNTHETIC, "пожалуйста."),
    ]
    gaps = [p.gap_ms for p in parts]
    assert gaps[0] == 0 and gaps[1] == WORD_GAP_MS
    assert parts[7].gap_ms == SENTENCE_GAP_MS  # "... копеек. Оплатите"
    assert parts[-1].gap_ms == COMMA_GAP_MS  # "... ноября, пожалуйста"
    assert [p.fragment for p in parts if p.recorded] == AMOUNT_IDS + DATE_IDS


def test_missing_fragments_are_said_synthetically_in_one_go() -> None:
    available = set(fragments.catalogue("ru")) - {"num_800", "rouble_many", "ord_5_gen"}
    parts = plan_phrase(f"Долг {AMOUNT}", "ru", {AMOUNT: AMOUNT_IDS}, available)
    assert [(p.kind, p.text) for p in parts] == [
        (SYNTHETIC, "Долг"), (RECORDED, "одна"), (RECORDED, "тысяча"),
        (SYNTHETIC, "восемьсот рублей"),  # two missing neighbours: one synthetic part
        (RECORDED, "пятьдесят"), (RECORDED, "копеек"),
    ]
    only_date = plan_phrase(DATE, "ru", {DATE: DATE_IDS}, available)
    assert [(p.kind, p.fragment) for p in only_date] == [(RECORDED, "num_20"), (SYNTHETIC, "ord_5_gen"), (RECORDED, "month_11")]


def test_spans_are_found_whatever_the_case_and_only_as_whole_words() -> None:
    everything = set(fragments.catalogue("ru"))
    first = "первое ноября"
    twenty_first = "двадцать первое ноября"
    spans = {first: ["ord_1_nom", "month_11"], twenty_first: ["num_20", "ord_1_nom", "month_11"],
             AMOUNT: AMOUNT_IDS}
    parts = plan_phrase(f"Двадцать первое ноября или первое ноября? {AMOUNT.capitalize()}", "ru", spans, everything)
    assert [p.fragment for p in parts if p.recorded] == ["num_20", "ord_1_nom", "month_11", "ord_1_nom", "month_11", *AMOUNT_IDS]
    assert describe(parts)[0] == {"kind": RECORDED, "text": "двадцать", "fragment": "num_20"}
    # inside a longer word it is not the date
    assert all(not p.recorded for p in plan_phrase("сверхпервое ноябряшка", "ru", spans, everything))


# -- rendering audio -----------------------------------------------------------------------------

def test_a_phrase_is_composed_from_recordings_and_espeak(tone_pack: Path, tmp_path: Path, engine: CountingEngine) -> None:
    (tone_pack / "ru" / "num_800.wav").unlink()  # the pack lacks "восемьсот"
    cache = AudioCache(tmp_path / "cache", engine)
    voice = PhraseVoice(cache, load_pack(tone_pack))
    text = f"Ваш долг {AMOUNT}."
    assert voice.synthetic_texts(text, "ru", {AMOUNT: AMOUNT_IDS}) == ["Ваш долг", "восемьсот"]
    path = voice.path_for(text, "ru", {AMOUNT: AMOUNT_IDS})
    assert voice.synthetic_texts(text, "ru", {AMOUNT: AMOUNT_IDS}) == []  # composed: nothing to make ahead

    assert path.parent.parent.parent.name == "composed"
    info = wav_info(path)
    assert (info.rate, info.channels, info.sample_width) == (8000, 1, 2)
    # espeak-ng said the template's words and the one missing fragment, nothing of the rest
    assert sorted(t for t, _lang in engine.calls) == ["Ваш долг", "восемьсот"]
    # five recorded tones (0.2 s plus their 20 ms edges at most) and two spoken parts
    spoken = sum(len(load_wav(cache.path_for(t, "ru"))) for t in ("Ваш долг", "восемьсот"))
    audio = load_wav(path)
    assert spoken + 5 * 150 + 6 * WORD_GAP_MS <= len(audio) <= spoken + 5 * 260 + 6 * WORD_GAP_MS
    assert level_ok(audio)
    # the same phrase again is one cached file, nothing synthesised
    engine.calls.clear()
    assert voice.path_for(text, "ru", {AMOUNT: AMOUNT_IDS}) == path and engine.calls == []


def test_without_a_pack_or_for_english_the_whole_phrase_is_synthetic(tone_pack: Path, tmp_path: Path, engine: CountingEngine) -> None:
    cache = AudioCache(tmp_path / "cache", engine)
    text = f"Ваш долг {AMOUNT}."
    assert PhraseVoice(cache, None).path_for(text, "ru", {AMOUNT: AMOUNT_IDS}) == cache.path_for(text, "ru")
    voice = PhraseVoice(cache, load_pack(tone_pack))
    english = "You owe one thousand eight hundred roubles."
    assert voice.path_for(english, "en", {}) == cache.path_for(english, "en")
    assert voice.synthetic_texts(english, "en", {}) == [english]


def test_an_unusable_recording_falls_back_to_espeak(tone_pack: Path, tmp_path: Path, engine: CountingEngine) -> None:
    (tone_pack / "uk" / "month_11.wav").write_bytes(b"RIFF not really a wav")
    voice = PhraseVoice(AudioCache(tmp_path / "cache", engine), load_pack(tone_pack))
    date = "двадцять п'ятого листопада"
    ids = fragments.date_fragments(dt.date(2025, 11, 25), "uk", "gen")
    parts = voice.plan(f"до {date}", "uk", {date: ids})
    assert [(p.kind, p.text) for p in parts] == [(SYNTHETIC, "до"), (RECORDED, "двадцять"), (RECORDED, "п'ятого"),
                                                 (SYNTHETIC, "листопада")]
    voice.path_for(f"до {date}", "uk", {date: ids})
    assert sorted(t for t, _ in engine.calls) == ["до", "листопада"]


# -- loudness ------------------------------------------------------------------------------------

def test_quiet_and_loud_recordings_end_at_one_level(tmp_path: Path) -> None:
    quiet = load_pack(write_tone_pack(tmp_path / "quiet", ("ru",), amplitude=0.02))  # about -37 dBFS
    loud = load_pack(write_tone_pack(tmp_path / "loud", ("ru",), amplitude=0.95))  # near full scale
    for fragment in ("num_1_f", "rouble_many", "month_3"):
        a, b = quiet.audio("ru", fragment), loud.audio("ru", fragment)
        assert a is not None and b is not None
        assert speech_level_dbfs(a) == pytest.approx(TARGET_LEVEL_DBFS, abs=0.3)
        assert speech_level_dbfs(b) == pytest.approx(TARGET_LEVEL_DBFS, abs=0.3)


def test_the_level_ignores_pauses() -> None:
    word = tone(440, 8000, seconds=0.5, amplitude=0.1)
    paused = word + AudioSegment.silent(2000, frame_rate=8000) + word
    assert speech_level_dbfs(paused) == pytest.approx(speech_level_dbfs(word), abs=0.2)
    assert paused.dBFS < word.dBFS - 4  # whereas the plain RMS drops with the pause


def test_every_synthetic_phrase_ends_at_one_level(tmp_path: Path, engine: CountingEngine) -> None:
    cache = AudioCache(tmp_path / "cache", engine)
    phrases = [("ru", "Да."), ("ru", "Здравствуйте. Это компания «Охрана-Сервис». Пожалуйста, не кладите трубку."),
               ("uk", "Будь ласка, сплатіть до двадцять п'ятого листопада."), ("ru", "пятьсот")]
    audio = [load_wav(cache.path_for(text, lang)) for lang, text in phrases]
    levels = [speech_level_dbfs(a) for a in audio]
    assert all(level_ok(a) for a in audio), levels
    assert max(levels) - min(levels) <= 1.5, levels
    assert all(a.max_dBFS <= PEAK_LIMIT_DBFS + 0.05 for a in audio)


# -- the shipped synthetic pack ------------------------------------------------------------------

class ToneEngine:
    """A fast stand-in engine for generating packs (each text a tone)."""

    name = "tones"
    options = ""

    def __init__(self) -> None:
        self.calls = 0

    def voice_for(self, language: str) -> str:
        return language

    def synthesize(self, text: str, language: str) -> AudioSegment:
        self.calls += 1
        return tone(200 + 5 * len(text), 16000, seconds=0.15, amplitude=0.2)


def test_synthetic_pack_is_generated_on_first_use(tmp_path: Path) -> None:
    engine = ToneEngine()
    settings = Settings(audio_cache_dir=tmp_path / "audio", extra={"IVR_VOICE_PACK": "synthetic"})
    pack = pack_from_settings(settings, engine)
    assert pack is not None and engine.calls == 242
    assert (tmp_path / "audio" / SYNTHETIC_DIR / MANIFEST).is_file()
    assert check_pack(pack.root).complete
    again = pack_from_settings(settings, engine)
    assert again is not None and engine.calls == 242  # generated once, then read
    # pruning the audio cache never eats the pack: its fragments are sources, not cached phrases
    cache = AudioCache(tmp_path / "audio", engine)
    phrase = cache.path_for("", "ru")
    assert cache.prune(dt.timedelta(seconds=0), now=time.time() + 3600) == 1 and not phrase.exists()
    assert check_pack(pack.root).complete


def test_generator_speaks_fragments_with_espeak(tmp_path: Path, engine: CountingEngine) -> None:
    pack = make_synthetic_pack(tmp_path / "pack", engine, ["uk"], only=["num_2_f", "hryvnia_few", "month_1"])
    assert sorted(t for t, _ in engine.calls) == ["гривні", "дві", "січня"]
    for fragment in ("num_2_f", "hryvnia_few", "month_1"):
        info = wav_info(tmp_path / "pack" / "uk" / f"{fragment}.wav")
        assert (info.rate, info.channels) == (8000, 1) and 0.1 < info.duration_s < 2.0
        audio = pack.audio("uk", fragment)
        assert audio is not None and level_ok(audio)
    report = check_pack(tmp_path / "pack", ["uk"])
    assert report.present["uk"] == 3 and len(report.missing["uk"]) == 121 - 3


def test_plan_command_shows_recorded_and_synthetic(tone_pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tone_pack / "ru" / "kopeck_many.wav").unlink()
    env = ["--env-file", "/nonexistent"]
    assert main([*env, "voice-pack", "plan", "1800.50", "--pack", str(tone_pack), "--currency", "RUB"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == AMOUNT
    assert out[1].split() == ["recorded", "num_1_f", "одна"]
    assert out[-1].split() == ["synthetic", "kopeck_many", "копеек"]
    assert main([*env, "voice-pack", "plan", "2025-11-25", "--case", "gen", "--pack", str(tone_pack)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == DATE


def test_sample_context_phrase_through_the_pack(tone_pack: Path, tmp_path: Path, engine: CountingEngine) -> None:
    """The spans a real render context yields find their text in a rendered phrase."""
    context = sample_context("ru")
    spans = fragments.spans_from_context(context)
    text = f"Сумма {context['amount_words']}, оплатите до {context['block_date_words_gen']}."
    parts = PhraseVoice(AudioCache(tmp_path / "c", engine), load_pack(tone_pack)).plan(text, "ru", spans)
    assert [p.fragment for p in parts if p.recorded] == [
        *fragments.money_fragments(Decimal("1800.50"), "RUB", "ru"),
        *fragments.date_fragments(context["block_date"], "ru", "gen")]


def test_a_re_recorded_fragment_is_used_without_a_restart(tone_pack: Path, tmp_path: Path, engine: CountingEngine) -> None:
    voice = PhraseVoice(AudioCache(tmp_path / "cache", engine), load_pack(tone_pack))
    date = "первое марта"
    ids = ["ord_1_nom", "month_3"]
    before = voice.path_for(date, "ru", {date: ids})
    write_tone_wav(tone_pack / "ru" / "month_3.wav", 1000, 8000, 0.5)  # a new, longer take
    after = voice.path_for(date, "ru", {date: ids})
    assert after != before
    assert len(load_wav(after)) > len(load_wav(before)) + 250
    assert engine.calls == []


@pytest.mark.parametrize(("language", "currency"), [("ru", "RUB"), ("uk", "UAH")])
def test_boundary_amounts_and_dates_play_every_fragment_from_the_pack(
        language: str, currency: str, tone_pack_master: Path, tmp_path: Path, engine: CountingEngine) -> None:
    """Rendered audio, not just the plan: each boundary amount (with 0/1/2/5/11/21 kopecks) and a
    date of every month is exactly its fragments' recordings one after another, nothing synthesised."""
    pack = load_pack(tone_pack_master)
    voice = PhraseVoice(AudioCache(tmp_path / "cache", engine), pack)
    amounts = [Decimal(u) + Decimal(c) / 100
               for u in (0, 1, 2, 5, 11, 12, 14, 21, 22, 25, 100, 101, 1000, 1001, 2000, 5000, 21000, 1_000_000)
               for c in (0, 1, 2, 5, 11, 21)]
    phrases = [(money_words(a, currency, language), fragments.money_fragments(a, currency, language)) for a in amounts]
    for month in range(1, 13):
        day = dt.date(2025, month, 1 + (month * 5) % 28)
        phrases.append((date_words(day, language, case="gen"), fragments.date_fragments(day, language, "gen")))
    for text, ids in phrases:
        played = load_wav(voice.path_for(text, language, {text: ids}))
        pieces = [pack.audio(language, f) for f in ids]
        expected_ms = sum(len(p) for p in pieces if p is not None) + WORD_GAP_MS * (len(ids) - 1)
        assert all(p is not None for p in pieces)
        assert abs(len(played) - expected_ms) <= 2 * len(ids), text
    assert engine.calls == []



def test_list_command_is_the_recording_script(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--env-file", "/nonexistent", "voice-pack", "list", "--lang", "uk"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 121
    assert "uk\tmonth_11\tuk/month_11.wav\tлистопада" in lines and "uk\tand\tuk/and.wav\tта" in lines
