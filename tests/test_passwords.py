"""Password and secret strength (ivr.passwords)."""

from __future__ import annotations

import pytest

from ivr import passwords


@pytest.mark.parametrize(("password", "key"), [
    ("short1!", "err_password_short"),
    ("12345678", "err_password_short"),  # eight characters were enough before
    ("aaaaaaaaaaaaaaaa", "err_password_pattern"),
    ("abababababababab", "err_password_pattern"),
    ("Tq8#Tq8#Tq8#", "err_password_pattern"),
    ("qwertyuiop123", "err_password_common"),  # on the list itself
    ("1q2w3e4r5t6y", "err_password_common"),
    ("password2024!!", "err_password_common"),  # a common word with digits tacked on
    ("!!Dragon123456", "err_password_common"),
    ("йцукенгшщз12", "err_password_common"),  # the Russian keyboard's qwerty
    ("olga.petrova-2025", "err_password_username"),
])
def test_weak_passwords_are_refused(password: str, key: str) -> None:
    problem = passwords.password_problem(password, username="olga.petrova")
    assert problem is not None and problem[0] == key, problem


@pytest.mark.parametrize("password", ["correct horse 1", "browser-pass-1", "Tq8#vLp2!zRw", "сирень-за-окном-7"])
def test_good_passwords_pass(password: str) -> None:
    assert passwords.password_problem(password, username="olga") is None


def test_the_list_is_shipped_and_large() -> None:
    common = passwords.common_passwords()
    assert len(common) > 5000
    assert {"123456", "password", "qwerty", "пароль"} <= common


@pytest.mark.parametrize("secret", ["CHANGE-ME", "change-me-to-a-long-random-secret-please",
                                    "secret", "x" * 40, "password1password1password1password1",
                                    "0123456789012345678901234567890123"])
def test_weak_secrets_are_refused(secret: str) -> None:
    assert passwords.secret_problem(secret, 32) is not None


def test_random_secret_passes() -> None:
    assert passwords.secret_problem("Zk3v9QpL2xR7mT4wN8sB1cF6hJ0dG5aY", 32) is None
