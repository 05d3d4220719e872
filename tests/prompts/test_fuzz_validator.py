"""The template validator on random and template-shaped text: it accepts, or it refuses with a
TemplateProblem; nothing else escapes, and nothing runs away (the render budget bounds it)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.prompts.context import CONTEXT_DOC, sample_context
from ivr.prompts.render import FILTERS, MAX_TEXT_CHARS, PromptStore, TemplateProblem

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
STORE = PromptStore(REPO_PROMPTS)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKENS = [
    "{{", "}}", "{%", "%}", "{#", "#}", " ", "\n", "(", ")", "[", "]", ",", ".", "|", "~", "+", "-", "*", "**", "/",
    "//", "%", "==", "<", "and", "or", "not", "if", "else", "endif", "for", "in", "endfor", "set", "endset", "=",
    "macro", "endmacro", "call", "endcall", "filter", "endfilter", "recursive", "loop", "loop.index", "caller()",
    "range(", "namespace(", "dict(", "'a'", '"б"', "0", "1", "7", "200", "100000", "-1", "2.5", "none", "true",
    "__class__", "_x", "mro", "format", "join", "replace", "center", "attr", "map", "list", "length", "items()",
    "include", "import", "extends", "raw", "endraw", "Здравствуйте",
    *CONTEXT_DOC, *FILTERS,
]
template_like = st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)
# expressions inside a well-formed tag get past the parser more often, to the sandbox and budget
EXPR = [t for t in TOKENS if not t.startswith(("{", "%", "#")) and t not in ("}}", "%}", "#}", "\n")]
expression = st.lists(st.sampled_from(EXPR), min_size=1, max_size=12).map(" ".join)
structured = st.one_of(
    expression.map(lambda e: "{{ " + e + " }}"),
    st.tuples(expression, expression).map(lambda p: "{% for x in " + p[0] + " %}{{ x }} " + p[1] + "{% endfor %}"),
    st.tuples(expression, expression).map(lambda p: "{% set y = " + p[0] + " %}{{ y " + p[1] + " }}"),
    st.tuples(expression, expression).map(lambda p: "{% if " + p[0] + " %}{{ " + p[1] + " }}{% endif %}"),
)


@FUZZ
@given(st.one_of(template_like, structured, st.text(max_size=120)), st.sampled_from(["ru", "uk", "en", "xx"]))
def test_validator_raises_only_template_problem(body: str, language: str) -> None:
    try:
        STORE.validate(body, "debt_soft", language)
    except TemplateProblem as problem:
        assert problem.message and problem.name == "debt_soft"
        return
    text = STORE.render_string(body, language, sample_context(language), "debt_soft")
    assert len(text) <= MAX_TEXT_CHARS
