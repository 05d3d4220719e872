"""UI strings of the voice-pack marks in the prompt preview (issue 16)."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "ru": {
        "vp_parts_intro": "Кто что говорит:",
        "vp_pack": "Голосовой пакет: {name}",
        "vp_recorded": "запись из голосового пакета",
        "vp_synthetic": "синтезатор речи (espeak-ng)",
        "vp_legend": "Зелёным — фрагменты, записанные диктором (голосовой пакет); серым — то, что говорит синтезатор: "
                     "текст шаблона и фрагменты, которых нет в пакете (ivr voice-pack check покажет, каких).",
    },
    "uk": {
        "vp_parts_intro": "Хто що каже:",
        "vp_pack": "Голосовий пакет: {name}",
        "vp_recorded": "запис із голосового пакета",
        "vp_synthetic": "синтезатор мовлення (espeak-ng)",
        "vp_legend": "Зеленим — фрагменти, записані диктором (голосовий пакет); сірим — те, що каже синтезатор: "
                     "текст шаблону та фрагменти, яких немає в пакеті (ivr voice-pack check покаже, яких саме).",
    },
    "en": {
        "vp_parts_intro": "Who says what:",
        "vp_pack": "Voice pack: {name}",
        "vp_recorded": "recording from the voice pack",
        "vp_synthetic": "speech synthesiser (espeak-ng)",
        "vp_legend": "Green: fragments a speaker recorded (the voice pack); grey: what the synthesiser says, the "
                     "template's own words and fragments the pack lacks (ivr voice-pack check lists them).",
    },
}
