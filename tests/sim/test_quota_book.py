"""QuotaBook: the simulator's callee book that meets its mix in exact proportions."""

from __future__ import annotations

from collections import Counter

from ivr.sim.population import QuotaBook

RATES = {"answer": 0.5, "busy": 0.2, "no_answer": 0.3}
PERSONAS = {"reason": 0.6, "promise": 0.3, "silent": 0.1}


def test_every_run_of_calls_meets_the_outcome_shares_within_a_call_or_two() -> None:
    book = QuotaBook(seed=3, rates=RATES, personas=PERSONAS)
    outcomes = [book(f"+7495{i:07d}").outcome for i in range(200)]
    for n in (20, 50, 200):
        seen = Counter("answer" if o == "answer" else o for o in outcomes[:n])
        for outcome, share in RATES.items():
            assert abs(seen[outcome] - n * share) <= 2, (n, seen)


def test_a_subscriber_keeps_his_persona_and_reason_on_later_calls() -> None:
    book = QuotaBook(seed=5, rates={"answer": 1.0}, personas=PERSONAS, menu={"reason_keys": "346"})
    numbers = [f"+7495{i:07d}" for i in range(60)]
    first = {n: (book(n), book.personas_given[n]) for n in numbers}
    personas = Counter(p for _, p in first.values())
    assert personas == {"reason": 36, "promise": 18, "silent": 6}
    reason_keys = Counter(c.keys[-1].digits for c, p in first.values() if p == "reason")
    assert len(reason_keys) == 3 and all(abs(v - 12) <= 1 for v in reason_keys.values()), reason_keys
    for n in numbers:  # called again: the same persona, the same reason
        again = book(n)
        assert book.personas_given[n] == first[n][1]
        if first[n][1] == "reason":
            assert again.keys[-1].digits == first[n][0].keys[-1].digits
