"""Rendering is bounded in time and size: templates that would spin the CPU or allocate gigabytes
are refused as a TemplateProblem (with a line), quickly, and ordinary templates are untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr.prompts.context import sample_context
from ivr.prompts.render import PromptStore, TemplateProblem, make_environment
from ivr.prompts.sandbox import RenderLimitExceeded, RenderLimits

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


@pytest.fixture
def store() -> PromptStore:
    # the operation budget decides, not the clock: a busy CI machine must not change which limit
    # a test meets first (the deadline has its own test)
    return PromptStore(REPO_PROMPTS, limits=RenderLimits(max_seconds=600))


RUNAWAY = [
    # the audit's two cases
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "range of 100000"),
    ("{{ ('a'*200*200*200*200)|length }}", "repetition"),
    # loops the range cap alone would let through
    ("{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}", "too much work"),
    ("{% set s = 'ab'*5000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}", "too much work"),
    ("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(40) }}", "too much work"),
    ("{% set ns = namespace(d=[]) %}{% for i in range(30) %}{% set ns.d = [ns.d, ns.d] %}{% endfor %}"
     "{% for x in ns.d recursive %}{{ loop(x) }}{% endfor %}", "too large"),
    # values that double until memory runs out
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "too large"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s = ns.s + ns.s %}{% endfor %}", "too large"),
    ("{% set ns = namespace(s='ab') %}{% for i in range(60) %}{% set ns.s %}{{ ns.s }}{{ ns.s }}{% endset %}{% endfor %}",
     "too large"),
    ("{% set ns = namespace(n=2**64) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}", "number too large"),
    ("{{ (((10**64)**64)**64)**64 }}", "number too large"),
    ("{% set l = [1] %}{% set ns = namespace(l=l) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
     "too large"),
    ("{% set s = 'a'*10000 %}{{ ([s]*2*10000)|join|length }}", "repetition"),
    # one call that multiplies sizes, refused before it allocates
    ("{% set x = 'a'*10000 %}{{ x|replace('a', x)|length }}", "'replace'"),
    ("{% set x = 'a'*10000 %}{{ x.replace('a', x)|length }}", "'replace'"),
    ("{{ 'a'|center(1000000000)|length }}", "'center'"),
    ("{{ 'a'.zfill(10**9) }}", "'zfill'"),
    ("{{ ('x'*10000).expandtabs(100000) }}", "'expandtabs'"),
    ("{{ ('abc'*3000).translate({97: 'x'*10000})|length }}", "'translate'"),
    ("{{ ('a '*5000)|wordwrap(1, wrapstring='x'*10000)|length }}", "'wordwrap'"),
    ("{{ ['a'*10000, 'b'*10000]|join('c'*10000) }}", "too large"),
    ("{{ [1]|slice(1000000000)|list|length }}", "'slice'"),
    ("{{ range(10**9)|list|length }}", "range of"),
    ("{{ '%999999999d'|format(1)|length }}", "format width"),
    ("{{ ('%0999999999d' % 1)|length }}", "format width"),
    ("{{ ('%*d' % (999999999, 1))|length }}", "format width"),
    ("{{ '{:>999999999}'.format(1)|length }}", "format spec"),
    ("{{ '{:>{}}'.format(1, 999999999)|length }}", "format spec"),
    # output: streamed and capped long before it is joined
    ("{% for i in range(20000) %}{{ 'слово ' * 100 }}{% endfor %}", "renders over"),
]


@pytest.mark.parametrize(("body", "fragment"), RUNAWAY)
def test_runaway_templates_are_refused(store: PromptStore, body: str, fragment: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        store.render_string(body, "ru", sample_context("ru"), name="debt_soft")
    assert fragment in info.value.message
    if fragment != "renders over":  # the output cap is checked outside the template's frames
        assert info.value.line == 1
    with pytest.raises(TemplateProblem):  # the admin UI's save and preview run validate first
        store.validate(body, "debt_soft", "ru")


def test_wall_clock_deadline() -> None:
    # with an operation budget too large to stop it, the deadline does
    store = PromptStore(REPO_PROMPTS, limits=RenderLimits(max_ops=10**12, max_seconds=0.05))
    body = "{% for i in range(20000) %}{% for j in range(20000) %}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateProblem, match="takes too long"):
        store.render_string(body, "ru", sample_context("ru"))


def test_ordinary_templates_stay_within_the_budget(store: PromptStore) -> None:
    for language in store.languages():
        assert store.check_files([language]) == []
    body = ("{% for r in reasons %}{{ r.label | ucfirst }} — нажмите {{ r.key }}. {% endfor %}"
            "{{ amount | money_words }}, {{ block_date | date_words('gen') }}, {{ '%s.'|format(company) }} "
            "{{ ('x' * 3)|center(9)|trim }} {{ 'a-b'.replace('-', ' и ') }} {{ ', '.join(['раз', 'два']) }} "
            "{{ 2 ** 10 }} {{ days_overdue * 2 }} {{ '{:>3}'.format(7) }}")
    text = store.render_string(body, "ru", sample_context("ru"))
    assert "Забыл оплатить — нажмите 1." in text and "a и b" in text and "раз, два" in text
    assert "xxx a и b раз, два 1024" in text and text.endswith(" 7")  # spaces are normalised


def test_a_budget_is_per_render(store: PromptStore) -> None:
    # ~140,000 of the 200,000 operations: fine once, and again (the count does not carry over)
    body = "{% for i in range(10000) %}{% for j in range(9) %}{% endfor %}{% endfor %}ok"
    for _ in range(3):
        assert store.render_string(body, "ru", sample_context("ru")) == "ok"


def test_rendering_outside_a_budget_fails_closed() -> None:
    template = make_environment().from_string("{{ 1 + 1 }}")
    with pytest.raises(RenderLimitExceeded, match="outside a render budget"):
        template.render()
