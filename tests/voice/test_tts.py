"""espeak-ng, really run: each language speaks, at a pace that suits the phone."""

from __future__ import annotations

import shutil

import pytest

from ivr.config import Settings
from ivr.voice.audio import is_silent
from ivr.voice.tts import EspeakEngine, TTSEngine, TTSError, get_engine

PHRASES = {
    "ru": "Сумма задолженности — одна тысяча восемьсот рублей пятьдесят копеек.",
    "uk": "Сума заборгованості — одна тисяча вісімсот гривень п'ятдесят копійок.",
    "en": "The amount due is one thousand eight hundred dollars and fifty cents.",
}


def test_espeak_is_installed() -> None:
    assert shutil.which("espeak-ng"), "espeak-ng missing: scripts/setup.sh installs it (apt-get install espeak-ng)"


@pytest.mark.parametrize("language", ["ru", "uk", "en"])
def test_each_language_speaks(language: str) -> None:
    engine = EspeakEngine()
    assert isinstance(engine, TTSEngine)
    audio = engine.synthesize(PHRASES[language], language)
    assert len(audio) > 2000
    assert not is_silent(audio)


def test_speech_rate_suits_the_phone() -> None:
    """The chosen speed (150) gives ~112 words per minute in Russian: slower than espeak's
    default (~127 wpm at 175), within the pace recommended for telephone prompts."""
    text = ("Напоминаем: по услуге «охрана квартиры» не поступила ежемесячная оплата. Сумма задолженности — "
            "одна тысяча восемьсот рублей пятьдесят копеек. Если оплата не поступит до двадцать пятого ноября, "
            "услуга будет приостановлена.")
    words = len(text.split()) - 1  # the dash is not a word
    chosen = len(EspeakEngine().synthesize(text, "ru")) / 60000
    default = len(EspeakEngine(speed=175).synthesize(text, "ru")) / 60000
    assert 100 <= words / chosen <= 125
    assert words / default > words / chosen + 10


def test_text_is_never_taken_as_an_option() -> None:
    audio = EspeakEngine().synthesize("-w /tmp/owned.wav --version", "en")
    assert len(audio) > 500 and not is_silent(audio)


def test_unsupported_language_and_missing_binary() -> None:
    with pytest.raises(TTSError, match="no voice configured for language 'de'"):
        EspeakEngine().synthesize("Hallo", "de")
    with pytest.raises(TTSError, match="apt-get install espeak-ng"):
        EspeakEngine(binary="espeak-ng-not-installed")


def test_get_engine_from_settings() -> None:
    engine = get_engine(Settings(extra={"IVR_TTS_SPEED": "140", "IVR_TTS_PITCH": "55"}))
    assert isinstance(engine, EspeakEngine)
    assert (engine.speed, engine.pitch, engine.options) == (140, 55, "-s140 -p55")
    with pytest.raises(TTSError, match="unknown speech engine 'festival'"):
        get_engine(Settings(tts_engine="festival"))
    with pytest.raises(TTSError, match="IVR_TTS_SPEED: expected an integer"):
        get_engine(Settings(extra={"IVR_TTS_SPEED": "fast"}))
    with pytest.raises(TTSError, match="speed must be"):
        get_engine(Settings(extra={"IVR_TTS_SPEED": "5"}))
