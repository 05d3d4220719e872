import logging

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
