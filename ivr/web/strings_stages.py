"""UI texts of issue 16 (before-due stages, thank-you calls after a payment), in the three UI
languages."""

from __future__ import annotations

STRINGS: dict[str, dict[str, str]] = {
    "ru": {
        "stages_before_due_hint": "Этапы до срока оплаты (отрицательный день от даты платежа, свой текст без слов о долге): "
                                  "{codes}. Включаются галочкой «активен» в карточке этапа.",
        "stages_thanks_title": "Звонок-благодарность после оплаты",
        "stages_thanks_help": "Короткий звонок после платежа, закрывшего долг, если перед ним робот дозвонился "
                              "(личность подтверждена) или было обещание оплаты за последние {lookback} дн. "
                              "Те же окна звонков, лимиты и отказы от звонков; до {tries} попыток в течение {days} дн.",
        "stages_thanks_enabled": "Звонить с благодарностью после оплаты",
        "purpose_thanks": "благодарность",
    },
    "uk": {
        "stages_before_due_hint": "Етапи до терміну оплати (від'ємний день від дати платежу, свій текст без слів про борг): "
                                  "{codes}. Вмикаються позначкою «активний» у картці етапу.",
        "stages_thanks_title": "Дзвінок-подяка після оплати",
        "stages_thanks_help": "Короткий дзвінок після платежу, що закрив борг, якщо перед ним робот додзвонився "
                              "(особу підтверджено) або була обіцянка оплати за останні {lookback} дн. "
                              "Ті самі вікна дзвінків, ліміти й відмови від дзвінків; до {tries} спроб протягом {days} дн.",
        "stages_thanks_enabled": "Дзвонити з подякою після оплати",
        "purpose_thanks": "подяка",
    },
    "en": {
        "stages_before_due_hint": "Stages before the due date (a negative day from the due date, their own words with no "
                                  "debt wording): {codes}. Enable one with \"active\" on its page.",
        "stages_thanks_title": "Thank-you call after a payment",
        "stages_thanks_help": "A short call after a payment that paid a debt off, when the robot had reached the person "
                              "(identity confirmed) or a promise was made in the {lookback} days before. Same call "
                              "windows, limits and opt-outs; up to {tries} tries within {days} days.",
        "stages_thanks_enabled": "Place a thank-you call after a payment",
        "purpose_thanks": "thank-you",
    },
}
