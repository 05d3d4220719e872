"""The sandboxed renderer: refuses bad templates with a line number, never renders half."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ivr.db.models import PromptTemplate
from ivr.prompts.context import sample_context
from ivr.prompts.render import MissingTemplate, PromptStore, TemplateProblem

REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


@pytest.fixture
def store(tmp_path: Path) -> PromptStore:
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "greeting.j2").write_text("Здравствуйте! Это {{ company }}.\n", encoding="utf-8")
    return PromptStore(tmp_path)


def ctx(language: str = "ru") -> dict[str, object]:
    return sample_context(language)


def test_renders_and_normalises_whitespace(store: PromptStore) -> None:
    body = "Сумма:\n\n   {{ amount_words }}.\n{% if service %}  Услуга   «{{ service }}».{% endif %}\n"
    text = store.render_string(body, "ru", ctx())
    assert text == "Сумма: одна тысяча восемьсот рублей пятьдесят копеек. Услуга «охрана квартиры»."


def test_problem_message_names_template_language_and_line(store: PromptStore) -> None:
    body = "Здравствуйте.\nЭто {{ company }}.\nСумма {{ amont }}."
    with pytest.raises(TemplateProblem) as info:
        store.render_string(body, "ru", ctx(), name="debt_soft")
    problem = info.value
    assert (problem.name, problem.line, problem.language) == ("debt_soft", 3, "ru")
    assert str(problem).startswith("debt_soft (ru), line 3: unknown variable 'amont'")
    assert "did you mean 'amount'" in str(problem)


def test_unknown_variable_in_a_branch_not_taken_is_still_refused(store: PromptStore) -> None:
    body = "{% if false %}\n\n{{ secret_field }}{% endif %}ok"
    with pytest.raises(TemplateProblem) as info:
        store.validate(body, "menu", "ru")
    assert info.value.line == 3
    assert "secret_field" in info.value.message


def test_loop_variables_and_set_are_not_unknown(store: PromptStore) -> None:
    body = "{% set n = reasons | length %}{% for r in reasons %}{{ r.key }}={{ r.label }}; {% endfor %}{{ n }}"
    assert store.render_string(body, "ru", ctx()) == "1=забыл оплатить; 2=не получил счёт; 2"


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("ok\n{% if amount %}\nno end", 2, "syntax error"),  # Jinja points at the unclosed block
        ("ok\n{{ amount | no_such_filter }}", 2, "no_such_filter"),
        ("ok\n\n{{ amount +}}", 3, "syntax error"),
        ("{% include 'other.j2' %}", 1, "not allowed"),
        ("a\n{% import 'x' as y %}", 2, "not allowed"),
    ],
)
def test_syntax_problems_are_refused_with_line(store: PromptStore, body: str, line: int, fragment: str) -> None:
    with pytest.raises(TemplateProblem) as info:
        store.validate(body, "t", "ru")
    assert info.value.line == line
    assert fragment in info.value.message


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ company.__class__ }}",
        "{{ reasons.append(1) }}",
        "{{ amount.__init__.__globals__ }}",
        "{{ (company|attr('__class__')) }}",
        "{{ company.format.__self__ }}",
    ],
)
def test_sandbox_blocks_escapes(store: PromptStore, body: str) -> None:
    with pytest.raises(TemplateProblem):
        store.render_string(body, "ru", ctx())
    with pytest.raises(TemplateProblem):
        store.validate(body)


def test_resource_abuse_is_refused(store: PromptStore) -> None:
    with pytest.raises(TemplateProblem, match="repetition"):
        store.render_string("{{ 'a' * 100000000 }}", "ru", ctx())
    with pytest.raises(TemplateProblem, match="exponent"):
        store.render_string("{{ 10 ** 100000 }}", "ru", ctx())
    with pytest.raises(TemplateProblem, match="characters"):
        store.render_string("{% for i in range(5000) %}слово {% endfor %}", "ru", ctx())


def test_runtime_error_reports_line_and_renders_nothing(store: PromptStore) -> None:
    body = "Первая строка.\n{{ reasons[0].missing_key }}\nТретья."
    with pytest.raises(TemplateProblem) as info:
        store.render_string(body, "ru", ctx(), name="reason_menu")
    assert info.value.line == 2


def test_none_value_in_filter_is_a_problem_not_a_crash(store: PromptStore) -> None:
    # sparse context: amount is fine, but a date filter on None gives '' and number_words on None fails
    with pytest.raises(TemplateProblem):
        store.render_string("{{ days_to_block | number_words }}", "ru", sample_context("ru", sparse=True))


def test_validate_walks_sparse_branches(store: PromptStore) -> None:
    # fine with full data, fails when there is no block date: validation must catch it
    body = "{{ (block_date - today).days }}"
    store.render_string(body, "ru", sample_context("ru"))
    with pytest.raises(TemplateProblem):
        store.validate(body, "debt_soft", "ru")


def test_filters_follow_the_call_language(store: PromptStore) -> None:
    body = "{{ amount | money_words }} | {{ block_date | date_words('gen') }} | {{ 3 | plural('день', 'дня', 'дней') }} | {{ 21 | number_words('f') }}"
    assert store.render_string(body, "ru", ctx()) == "одна тысяча восемьсот рублей пятьдесят копеек | двадцать пятого ноября | дня | двадцать одна"
    assert store.render_string("{{ amount | money_words('UAH') }}", "uk", ctx("uk")) == "одна тисяча вісімсот гривень п'ятдесят копійок"
    assert store.render_string("{{ block_date | date_words }}", "en", ctx("en")) == "November twenty-fifth"


def test_unsupported_language_is_refused(store: PromptStore) -> None:
    with pytest.raises(TemplateProblem, match="unsupported language"):
        store.validate("ok", "greeting", "de")
    with pytest.raises(TemplateProblem, match="unsupported language"):
        store.source("greeting", "de")


def test_file_source_and_missing(store: PromptStore) -> None:
    assert "{{ company }}" in store.source("greeting", "ru")
    with pytest.raises(MissingTemplate, match="no template"):
        store.source("closing", "ru")
    with pytest.raises(TemplateProblem, match="lowercase"):
        store.source("../../etc/passwd", "ru")


def test_database_override_beats_file(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "debt_soft.j2").write_text("ФАЙЛ {{ amount_words }}", encoding="utf-8")
    store = PromptStore(tmp_path, sessions)
    assert store.render("debt_soft", "ru", ctx(), stage_code="firm").startswith("ФАЙЛ")
    with sessions.begin() as s:
        s.add(PromptTemplate(language="ru", name="debt_soft", stage_code=None, body="ОБЩИЙ {{ amount_text }}"))
    assert store.render("debt_soft", "ru", ctx(), stage_code="firm") == "ОБЩИЙ 1\u00a0800 рублей 50 копеек"
    with sessions.begin() as s:
        s.add(PromptTemplate(language="ru", name="debt_soft", stage_code="firm", body="ЭТАП {{ stage }}", recording_path="x.wav"))
    assert store.render("debt_soft", "ru", ctx(), stage_code="firm") == "ЭТАП reminder"
    assert store.render("debt_soft", "ru", ctx(), stage_code="reminder").startswith("ОБЩИЙ")
    assert store.render("debt_soft", "ru", ctx()).startswith("ОБЩИЙ")
    resolved = store.resolve("debt_soft", "ru", "firm")
    assert (resolved.origin, resolved.stage_code, resolved.recording_path) == ("db", "firm", "x.wav")
    with sessions() as s:
        many = store.resolve_all(["debt_soft", "greeting"], "ru", "firm", s)
    assert many["debt_soft"].body == "ЭТАП {{ stage }}"
    assert "greeting" not in many  # neither override nor file


def test_shipped_templates_pass_check() -> None:
    store = PromptStore(REPO_PROMPTS)
    assert store.languages() == ["en", "ru", "uk"]
    assert store.check_files() == []


def test_check_files_names_file_problems(tmp_path: Path) -> None:
    (tmp_path / "ru").mkdir()
    (tmp_path / "ru" / "menu.j2").write_text("Нажмите 1.\n{{ human_kye }}\n", encoding="utf-8")
    (tmp_path / "ru" / "closing.j2").write_bytes("До свидания".encode("cp1251"))
    problems = PromptStore(tmp_path).check_files(required=("menu", "greeting"))
    by_name = {p.name: p for p in problems}
    assert set(by_name) == {"menu", "greeting", "closing"}
    assert by_name["menu"].line == 2 and "human_kye" in by_name["menu"].message
    assert isinstance(by_name["greeting"], MissingTemplate)
    assert "UTF-8" in by_name["closing"].message
