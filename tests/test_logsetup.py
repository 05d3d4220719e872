import logging

import pytest

from ivr.logsetup import PhoneMaskingFilter, mask_phone, mask_phones_in


def test_mask_phone_keeps_prefix_and_last_two():
    assert mask_phone("+79161234567") == "+7916*****67"
    assert "1234" not in mask_phone("89161234567")


def test_mask_in_text_leaves_short_numbers():
    text = "call +79161234567 attempt 42 amount 1800.50 number 8 (916) 123-45-67"
    masked = mask_phones_in(text)
    assert "1234567" not in masked and "123-45-67" not in masked
    assert "attempt 42" in masked and "1800.50" in masked


def test_filter_masks_log_record_args(caplog):
    logger = logging.getLogger("test.mask")
    logger.addFilter(PhoneMaskingFilter())
    with caplog.at_level(logging.INFO, logger="test.mask"):
        logger.info("dialing %s for %s", "+79161234567", "A-1")
    assert "+7916*****67" in caplog.text
    assert "+79161234567" not in caplog.text


def test_dates_times_and_ids_are_not_masked():
    text = ("2026-11-22 19:41:27,107 job next run at 2026-11-22 19:41:32 UTC; uniqueid 1795370953.2; "
            "due 22.11.2026 10:00; amount 1 800,50; phone +7 (916) 123-45-67")
    masked = mask_phones_in(text)
    assert "2026-11-22 19:41:27,107" in masked and "2026-11-22 19:41:32" in masked
    assert "1795370953.2" in masked and "22.11.2026 10:00" in masked and "1 800,50" in masked
    assert "123-45-67" not in masked


@pytest.mark.parametrize(("text", "expected"), [
    ("phone:79161234567", "phone:7916*****67"),
    ("phone:+79161234567", "phone:+7916*****67"),
    ("tel:+79161234567;", "tel:+7916*****67;"),
    ("phone=79161234567", "phone=7916*****67"),
    ("тел79161234567", "тел7916*****67"),  # glued to a word
    ("abonent79161234567ok", "abonent7916*****67ok"),
    ("id-79161234567", "id-7916*****67"),
    ("v.79161234567", "v.7916*****67"),
    ("phone_79161234567", "phone_7916*****67"),
    ("+7 (916) 123-45-67", "+7916*****67"),
    ("+7(916)123-45-67", "+7916*****67"),
    ("8 (916) 123 45 67", "8916*****67"),
    ("8-916-123-45-67", "8916*****67"),
    ("(916) 123-45-67", "9161****67"),
    ("916.123.45.67 called", "9161****67 called"),
    ("+7 916 123 45 67, then 2026-11-22", "+7916*****67, then 2026-11-22"),
    ("call 2026-11-22 +79161234567", "call 2026-11-22 +7916*****67"),
    ("+79161234567+79162234567", "+7916*****67+7916*****67"),
    ("PJSIP/79161234567@debt-trunk", "PJSIP/7916*****67@debt-trunk"),
    ('{"phone": "+79161234567"}', '{"phone": "+7916*****67"}'),
    ("№79161234567", "№7916*****67"),
])
def test_phone_shapes_are_masked(text, expected):
    assert mask_phones_in(text) == expected


@pytest.mark.parametrize("text", [
    "uniqueid 1700000000.123 linkedid 1700000000.122",
    "2026-11-22 19:41:27,107 job ran",
    "due 22.11.2026 10:00",
    "from 192.168.100.200:4573",
    "action dialer-host-4242-3f2a9c1b4d5e60718293a4b5c6d7e8f9 done",  # uuid hex with a digit run
    "cache key 5f0123456789abcdef0123456789abcdef.wav",
    "amount 1 800,50 and 1800.50",
    "attempt 42 of 3",
])
def test_ids_dates_and_addresses_are_kept(text):
    assert mask_phones_in(text) == text


def test_traceback_text_is_masked(caplog):
    logger = logging.getLogger("test.mask.exc")
    logger.addFilter(PhoneMaskingFilter())
    with caplog.at_level(logging.ERROR, logger="test.mask.exc"):
        try:
            raise ValueError("cannot dial 79161234567")
        except ValueError:
            logger.exception("dial failed")
    assert "79161234567" not in caplog.text
    assert "7916*****67" in caplog.text
