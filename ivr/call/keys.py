"""Keypad meaning in the call script (the prompts say the same; keep them in step)."""

IDENTITY_YES = "1"
IDENTITY_NO = "2"

MENU_PROMISE = "1"
MENU_PAID = "2"
MENU_REASON = "3"
MENU_REPEAT = "0"
# the human-request and opt-out keys are admin options (human_request_key, opt_out_key)

CONFIRM_YES = "1"
CONFIRM_REENTER = "2"

ALL_KEYS = "0123456789*#"
PROMISE_MAX_DIGITS = 4
