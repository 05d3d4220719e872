"""Push to billing: a durable outbox of facts (events.py, facts.py) and its sender (sender.py).

A fact (a call's final outcome, a promise made/kept/broken, an opt-out, a block-list change, a
finished callback task) writes one `outbox_events` row in the same transaction as the fact
itself, so a crash can lose neither without the other. The sender delivers the rows to the
billing system's endpoint later, in order per account, with retries.
"""
