"""Random, realistic callees for load tests and the demo.

The mix of outcomes and of answering personas comes from `rates` / `personas`; the keys each
persona presses come from `menu`, so the call script's menu can change without editing this file.
Each persona's `keys` answer the script's questions in order (see ivr.sim.scenario for how a
key press meets an input opportunity): identity first, then the main menu, then the follow-up.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterable, Mapping

from ivr.sim.scenario import Callee, KeyPress

DEFAULT_RATES: Mapping[str, float] = {
    "answer": 0.55,
    "busy": 0.10,
    "no_answer": 0.20,
    "machine": 0.10,
    "congestion": 0.03,
    "failed": 0.02,
}
DEFAULT_PERSONAS: Mapping[str, float] = {
    "promise": 0.28,  # right party, keys a payment date (sometimes an invalid one first)
    "paid": 0.12,  # right party, "already paid"
    "reason": 0.20,  # right party, names a reason from the classifier
    "human": 0.05,  # right party, asks for a person
    "opt_out": 0.04,  # right party, asks not to be called
    "silent": 0.10,  # presses nothing
    "hangup_early": 0.09,  # hangs up within seconds
    "wrong_party": 0.12,  # "not me"
}
DEFAULT_MENU: Mapping[str, str] = {
    "identity_me": "1",
    "identity_not_me": "2",
    "promise": "1",
    "paid": "2",
    "reason": "3",
    "repeat": "0",
    "human": "9",
    "opt_out": "7",
    "date_confirm": "1",
    "reason_keys": "12345678",
}
INVALID_DATES = ("3102", "0013", "9999", "3204")


def _pick(rng: random.Random, weights: Mapping[str, float]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names], k=1)[0]


def _ddmm(day: dt.date) -> str:
    return f"{day.day:02d}{day.month:02d}"


def _press(rng: random.Random, digits: str) -> KeyPress:
    return KeyPress(digits, delay=round(rng.uniform(0.6, 2.5), 2))


def persona_callee(
    persona: str, rng: random.Random, menu: Mapping[str, str], today: dt.date
) -> Callee:
    """An answering callee acting out `persona`."""
    m = {**DEFAULT_MENU, **menu}
    ring = round(rng.uniform(2.0, 15.0), 1)
    me = _press(rng, m["identity_me"])
    if persona == "promise":
        keys = [me]
        if rng.random() < 0.15:
            keys.append(_press(rng, m["repeat"]))  # hears the message again first
        keys.append(_press(rng, m["promise"]))
        if rng.random() < 0.3:
            keys.append(_press(rng, rng.choice(INVALID_DATES)))
        keys.append(_press(rng, _ddmm(today + dt.timedelta(days=rng.randint(0, 10)))))
        keys.append(_press(rng, m["date_confirm"]))
        return Callee("answer", ring, keys=keys)
    if persona == "paid":
        return Callee("answer", ring, keys=[me, _press(rng, m["paid"])])
    if persona == "reason":
        return Callee(
            "answer",
            ring,
            keys=[me, _press(rng, m["reason"]), _press(rng, rng.choice(m["reason_keys"]))],
        )
    if persona == "human":
        return Callee("answer", ring, keys=[me, _press(rng, m["human"])])
    if persona == "opt_out":
        return Callee("answer", ring, keys=[me, _press(rng, m["opt_out"])])
    if persona == "silent":
        return Callee("answer", ring)
    if persona == "hangup_early":
        return Callee("answer", ring, hangup_after=round(rng.uniform(2.0, 12.0), 1))
    if persona == "wrong_party":
        return Callee("answer", ring, keys=[_press(rng, m["identity_not_me"])])
    raise ValueError(f"unknown persona {persona!r}")


def random_population_with_personas(
    numbers: Iterable[str],
    rng: random.Random,
    rates: Mapping[str, float] | None = None,
    *,
    menu: Mapping[str, str] | None = None,
    personas: Mapping[str, float] | None = None,
    today: dt.date | None = None,
) -> dict[str, tuple[str, Callee]]:
    """number → (persona or outcome name, Callee). Deterministic for a seeded `rng`."""
    rates = rates if rates is not None else DEFAULT_RATES
    personas = personas if personas is not None else DEFAULT_PERSONAS
    if not rates or any(w < 0 for w in rates.values()) or sum(rates.values()) <= 0:
        raise ValueError("rates must be non-negative weights with a positive sum")
    today = today if today is not None else dt.date.today()
    out: dict[str, tuple[str, Callee]] = {}
    for number in numbers:
        outcome = _pick(rng, rates)
        if outcome == "answer":
            persona = _pick(rng, personas)
            out[number] = (persona, persona_callee(persona, rng, menu or {}, today))
        else:
            out[number] = (outcome, outcome_callee(outcome, rng))
    return out


def outcome_callee(outcome: str, rng: random.Random) -> Callee:
    """A callee that does not answer in person: machine, busy, no answer, congestion, failed."""
    if outcome == "machine":
        return Callee("machine", round(rng.uniform(2.0, 10.0), 1), hangup_after=round(rng.uniform(15.0, 40.0), 1))
    if outcome == "busy":
        return Callee("busy", round(rng.uniform(0.5, 4.0), 1))
    if outcome == "no_answer":
        return Callee("no_answer")
    return Callee(outcome, round(rng.uniform(0.2, 2.0), 1))


def random_population(
    numbers: Iterable[str],
    rng: random.Random,
    rates: Mapping[str, float] | None = None,
    *,
    menu: Mapping[str, str] | None = None,
    personas: Mapping[str, float] | None = None,
    today: dt.date | None = None,
) -> dict[str, Callee]:
    """number → Callee with the default (or given) mix; see random_population_with_personas."""
    full = random_population_with_personas(
        numbers, rng, rates, menu=menu, personas=personas, today=today
    )
    return {n: callee for n, (_, callee) in full.items()}


class LiveBook:
    """A scenario book for a long-running simulator (`ivr run` with no Asterisk): any number,
    imported before or after the start, gets a callee drawn from the mix, seeded by the number
    and how many times it was called (someone away on the first call may answer a later one),
    with today's date at the moment of the call (promised dates stay valid past midnight)."""

    def __init__(self, seed: int = 7, rates: Mapping[str, float] | None = None,
                 personas: Mapping[str, float] | None = None, menu: Mapping[str, str] | None = None,
                 today: Callable[[], dt.date] = dt.date.today) -> None:
        self.seed = seed
        self.rates = rates
        self.personas = personas
        self.menu = menu
        self.today = today
        self.calls: dict[str, int] = {}
        self.personas_given: dict[str, str] = {}  # number -> persona of its last call

    def __call__(self, number: str) -> Callee:
        n = self.calls.get(number, 0)
        self.calls[number] = n + 1
        rng = random.Random(f"{self.seed}:{number}:{n}")
        persona, callee = random_population_with_personas(
            [number], rng, self.rates, menu=self.menu, personas=self.personas, today=self.today())[number]
        self.personas_given[number] = persona
        return callee


class QuotaBook(LiveBook):
    """A LiveBook whose mix is met in exact proportions instead of by independent draws: the k-th
    call's outcome, the persona of the k-th subscriber to answer and the k-th reason named are
    read off a low-discrepancy sequence (k times the golden ratio, modulo 1) over the cumulative
    weights, so any run of N calls has each share within a call or two of N x its weight. A
    subscriber keeps his persona (and his reason) on every later call, as people do. Ring times
    and key delays stay random (seeded by number and call count).

    For checking a model against the simulator (tests/test_forecast_sim.py): with independent
    draws, a day of a few dozen answered calls gives counts per operator queue whose Poisson noise
    alone (1/sqrt(n), 25-60 % at 3-16 tasks) is larger than the tolerance being checked."""

    _GOLDEN = (5 ** 0.5 - 1) / 2

    def __init__(self, seed: int = 7, rates: Mapping[str, float] | None = None,
                 personas: Mapping[str, float] | None = None, menu: Mapping[str, str] | None = None,
                 today: Callable[[], dt.date] = dt.date.today) -> None:
        super().__init__(seed, rates, personas, menu, today)
        self._drawn: dict[str, int] = {}
        self._offset = random.Random(seed).random()
        self._who: dict[str, tuple[str, dict[str, str]]] = {}  # number -> persona, menu

    def _quota(self, stream: str, weights: Mapping[str, float]) -> str:
        k = self._drawn.get(stream, 0)
        self._drawn[stream] = k + 1
        u = (self._offset + k * self._GOLDEN) % 1.0
        total = sum(weights.values())
        names = sorted(weights)  # a fixed order, whatever the mapping's
        edge = 0.0
        for name in names:
            edge += weights[name] / total
            if u < edge:
                return name
        return names[-1]

    def __call__(self, number: str) -> Callee:
        n = self.calls.get(number, 0)
        self.calls[number] = n + 1
        rng = random.Random(f"{self.seed}:{number}:{n}")
        outcome = self._quota("outcome", self.rates if self.rates is not None else DEFAULT_RATES)
        if outcome != "answer":
            self.personas_given[number] = outcome
            return outcome_callee(outcome, rng)
        if number not in self._who:
            persona = self._quota("persona", self.personas if self.personas is not None else DEFAULT_PERSONAS)
            menu = {**DEFAULT_MENU, **(self.menu or {})}
            if persona == "reason":  # the reason key in exact proportions too
                menu["reason_keys"] = self._quota("reason", {k: 1.0 for k in menu["reason_keys"]})
            self._who[number] = (persona, menu)
        persona, menu = self._who[number]
        self.personas_given[number] = persona
        return persona_callee(persona, rng, menu, self.today())


def parse_weights(text: str, known: Iterable[str]) -> dict[str, float]:
    """'answer=0.7,busy=0.3' -> weights; names must be known (a typo is an error, not a zero)."""
    names = set(known)
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in names:
            raise ValueError(f"{part!r}: expected NAME=WEIGHT with NAME one of {', '.join(sorted(names))}")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"{part!r}: weight {value!r} is not a number") from None
    if not out or any(w < 0 for w in out.values()) or sum(out.values()) <= 0:
        raise ValueError(f"{text!r}: weights must be non-negative with a positive sum")
    return out
