"""Pure pieces of the simulator: parsing, scenario validation, sound lengths, populations."""

from __future__ import annotations

import datetime as dt
import random
import wave
from collections import Counter
from pathlib import Path

import pytest

from ivr.sim import (
    Callee,
    KeyPress,
    book_from_mapping,
    random_population,
    random_population_with_personas,
)
from ivr.sim.agi_media import say_number_files
from ivr.sim.agi_text import find_command, parse_args, scan_int
from ivr.sim.originate import parse_callerid, parse_variable_headers, separate_args, split_channel
from ivr.sim.population import DEFAULT_MENU
from ivr.sim.sounds import SoundLibrary


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        (
            'SET VARIABLE LAB_B "He said \\"pay 1800\\" today"',
            ["SET", "VARIABLE", "LAB_B", 'He said "pay 1800" today'],
        ),
        ('SET VARIABLE LAB_G ""', ["SET", "VARIABLE", "LAB_G", ""]),
        ('SET VARIABLE LAB_H "back\\\\slash"', ["SET", "VARIABLE", "LAB_H", "back\\slash"]),
        ("SET VARIABLE LAB_C it's a test", ["SET", "VARIABLE", "LAB_C", "it's", "a", "test"]),
        ("SET VARIABLE LAB_D 'single quoted'", ["SET", "VARIABLE", "LAB_D", "'single", "quoted'"]),
        ('STREAM FILE beep ""', ["STREAM", "FILE", "beep", ""]),
        ("  NOOP   x ", ["NOOP", "x"]),
    ],
)
def test_parse_args_like_res_agi(line: str, argv: list[str]) -> None:
    assert parse_args(line) == argv


def test_find_command_prefers_the_longest_match() -> None:
    assert find_command(["GET", "FULL", "VARIABLE", "x"]) == ("get", "full", "variable")
    assert find_command(["control", "stream", "file", "a", "#"]) == ("control", "stream", "file")
    assert find_command(["THIS", "IS", "GARBAGE"]) is None
    assert find_command([]) is None


def test_scan_int_is_sscanf_d() -> None:
    assert [scan_int(s) for s in ("1800", " -5", "12abc", "abc", "", "+7")] == [
        1800,
        -5,
        12,
        None,
        None,
        7,
    ]


def test_variable_headers_split_like_asterisk() -> None:
    assert separate_args('a,"b,c",d(e,f),[g,h],i\\,j') == ["a", "b,c", "d(e,f)", "[g,h]", "i,j"]
    assert separate_args("url,") == ["url"]  # a trailing delimiter adds no argument
    assert separate_args("a,,b") == ["a", "", "b"]
    assert parse_variable_headers(["X=1,Y=2", "AGI_ARGS=first arg,42,,И", "=bad,noeq", 'Q="a,b"']) == [
        ("X", "1"), ("Y", "2"), ("AGI_ARGS", "first arg"), ("Q", "a,b"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("tech", "resource", "expected"),
    [
        ("PJSIP", "79161234567@trunk", ("79161234567", "79161234567", "trunk")),
        ("Local", "79161234567@ivr-out/n", ("79161234567", "79161234567", "ivr-out")),
        ("Local", "s@debtor-sim", ("s", "s", "debtor-sim")),
        ("SIP", "trunk/79161234567", ("79161234567", "79161234567", "trunk")),
        ("PJSIP", "101", ("101", "101", "pjsip")),
        ("PJSIP", "+7 (916) 123-45-67@t", ("79161234567", "79161234567", "t")),
    ],
)
def test_split_channel(tech: str, resource: str, expected: tuple[str, str, str]) -> None:
    assert split_channel(tech, resource) == expected


def test_parse_callerid() -> None:
    assert parse_callerid('"Ivanov Ivan" <79161234567>') == ("79161234567", "Ivanov Ivan")
    assert parse_callerid("Robot <100>") == ("100", "Robot")
    assert parse_callerid("84951234567") == ("84951234567", "")
    assert parse_callerid("") == ("", "")


def test_say_number_file_counts() -> None:
    # en: 1800 → digits/1 thousand digits/8 hundred (agi-say-ru.log.txt)
    assert [say_number_files(n) for n in (0, 7, 21, 100, 1800, 2500, -3)] == [1, 1, 2, 2, 4, 4, 2]


def test_scenario_validation() -> None:
    with pytest.raises(ValueError, match="outcome"):
        Callee(outcome="voicemail")
    with pytest.raises(ValueError, match="digits"):
        KeyPress("1x")
    with pytest.raises(ValueError):
        Callee(hangup_at_input=0)
    with pytest.raises(ValueError, match="hangup_at_media"):
        Callee(hangup_at_media=0)
    with pytest.raises(ValueError):
        Callee(timeline=[(1.0, "9z")])
    fallback = Callee(outcome="busy")
    book = book_from_mapping({"1": Callee()}, fallback)
    assert book("1").outcome == "answer" and book("2") is fallback


def test_sound_library_reads_wav_length_and_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "greeting"
    with wave.open(str(path) + ".wav", "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 12000)
    lib = SoundLibrary(None, default_seconds=2.0)
    assert lib.duration(str(path)) == pytest.approx(1.5)
    assert lib.duration(str(tmp_path / "nope")) == 2.0
    assert lib.duration("beep") == pytest.approx(3404 / 8000)
    assert lib.duration("hello-world", "ru") == pytest.approx(8023 / 8000)
    custom = SoundLibrary({"ru/a": 1.0, "a": 3.0, "b": None}.get, default_seconds=2.0)
    assert (custom.duration("a", "ru"), custom.duration("a"), custom.duration("b")) == (
        1.0,
        3.0,
        None,
    )


def test_population_is_seeded_realistic_and_menu_driven() -> None:
    numbers = [f"7916{i:07d}" for i in range(3000)]
    today = dt.date(2026, 11, 20)
    first = random_population_with_personas(numbers, random.Random(7), today=today)
    again = random_population_with_personas(numbers, random.Random(7), today=today)
    assert first == again
    kinds = Counter(kind for kind, _ in first.values())
    answered = sum(1 for _, c in first.values() if c.outcome == "answer")
    assert 0.50 < answered / len(numbers) < 0.60
    assert 0.17 < kinds["no_answer"] / len(numbers) < 0.23
    assert 0.07 < kinds["busy"] / len(numbers) < 0.13
    assert 0.07 < kinds["machine"] / len(numbers) < 0.13
    for kind, callee in first.values():
        if kind == "promise":
            digits = [k.digits for k in callee.keys]
            assert digits[0] == "1" and digits[-1] == DEFAULT_MENU["date_confirm"]
            day, month = int(digits[-2][:2]), int(digits[-2][2:])
            assert (
                today
                <= dt.date(2026 + (month < today.month), month, day)
                <= today + dt.timedelta(days=10)
            )
        if kind == "wrong_party":
            assert [k.digits for k in callee.keys] == ["2"]
        if kind == "reason":
            assert callee.keys[1].digits == "3" and callee.keys[2].digits in "12345678"
    custom = random_population(
        numbers[:200],
        random.Random(1),
        {"answer": 1.0},
        menu={"identity_me": "5", "human": "0"},
        personas={"human": 1.0},
    )
    assert all([k.digits for k in c.keys] == ["5", "0"] for c in custom.values())
    with pytest.raises(ValueError):
        random_population(numbers[:3], random.Random(1), {"answer": -1.0})
