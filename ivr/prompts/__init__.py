"""What the robot says: Jinja2 templates under prompts/<language>/<name>.j2 (admins override them
per stage in the prompt_templates table), rendered in a sandbox with words for numbers, money and
dates (ivr.prompts.words, ivr.prompts.context, ivr.prompts.render).

This module is the catalogue of template names the call script plays; every name exists in every
shipped language (tests and `ivr prompts check` enforce it).
"""

from __future__ import annotations

# name -> what it is for (shown to admins next to the editor)
TEMPLATE_DOC: dict[str, str] = {
    "greeting": "First words: names the company. Nothing about the debt.",
    "identity": "Identity check: 1 if you are the holder, 2 if not. Nothing about the debt.",
    "wrong_party": "Polite close when someone else answered. Nothing about the debt.",
    "machine": "Message for an answering machine: asks to call back, discloses nothing.",
    "debt_soft": "Debt message of the soft reminder stage: amount, service, block date.",
    "debt_firm": "Debt message of the firm reminder stage.",
    "debt_final": "Debt message of the final warning before restriction.",
    "debt_blocked": "Debt message after the service was restricted.",
    "broken_promise": "Debt message when a promised date passed without payment (promise_date = the missed date).",
    "before_due": "Reminder before the due date (for a ladder stage that calls early).",
    "menu": "Main menu: 1 date, 2 already paid, 3 reason, 0 repeat (+ human and opt-out keys when enabled).",
    "date_entry": "How to key a payment date: DDMM, *1 today, *2 tomorrow.",
    "date_readback": "Reads promise_date back: 1 confirm, 2 enter another date.",
    "date_invalid": "The keyed digits are not a real date.",
    "date_past": "The keyed date has already passed.",
    "date_beyond_horizon": "The keyed date is later than allowed (deadline = latest allowed date).",
    "paid_thanks": "Answer to 'already paid'.",
    "reason_menu": "The reason menu, one line per reason of the classifier (only the reason keys are valid there).",
    "callback_promise": "After an actionable reason: a specialist will call back.",
    "human_request": "After the subscriber asked for a human.",
    "opt_out_done": "After the opt-out key: no more automated calls.",
    "invalid_key": "A key that the current menu does not have.",
    "no_input": "Nothing was pressed in time.",
    "repeat_intro": "Said before the message is repeated (optional).",
    "closing": "Closing line of a completed call.",
    "goodbye_no_input": "Close after too many tries without a valid answer.",
    "thanks_payment": "After a promise was confirmed: thanks, we expect the payment.",
    "thank_you": "Thank-you call after a payment (issue 16), said once the identity is confirmed; no menu follows.",
}

TEMPLATE_NAMES: tuple[str, ...] = tuple(TEMPLATE_DOC)
OPTIONAL_TEMPLATES: frozenset[str] = frozenset({"repeat_intro"})
DEBT_MESSAGES: tuple[str, ...] = (
    "debt_soft", "debt_firm", "debt_final", "debt_blocked", "broken_promise", "before_due", "thank_you",
)
# Messages that must not speak of a debt or threaten a restriction (issue 16).
NO_DEBT_MESSAGES: tuple[str, ...] = ("before_due", "thank_you")
# Said before the identity is confirmed (or to someone else): must never mention the debt.
PRE_IDENTITY: tuple[str, ...] = ("greeting", "identity", "wrong_party", "machine")
# Phrases a call may play besides its debt message (the readback is prepared per date).
CALL_PHRASES: tuple[str, ...] = tuple(
    n for n in TEMPLATE_NAMES if n not in DEBT_MESSAGES and n != "date_readback"
)
