"""Passwords and email addresses: hashing, the password policy, normalization."""

from __future__ import annotations

import functools
import re

import bcrypt
from email_validator import EmailNotValidError, validate_email

from shared.errors import EmailInvalidError, PasswordPolicyError
from shared.settings import get_settings

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_BYTES = 72  # bcrypt ignores anything past 72 bytes; refuse rather than silently truncate


# Plain ASCII addresses, the overwhelming majority, skip the full validator (a CSV import
# checks one per row); anything else goes through email-validator's full rules.
_PLAIN_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@(?=.{4,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$")


def normalize_email(email: str) -> str:
    """The canonical form we store and look up: validated syntax, lower-cased."""
    email = email.strip()
    local = email.split("@", 1)[0]
    if _PLAIN_EMAIL.match(email) and ".." not in local and not local.startswith(".") and not local.endswith("."):
        return email.lower()
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise EmailInvalidError(str(exc), details={"field": "email"}) from exc


def password_problems(password: str, *, email: str | None = None) -> list[str]:
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"at least {MIN_PASSWORD_LENGTH} characters")
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        problems.append(f"at most {MAX_PASSWORD_BYTES} bytes")
    if not any(ch.isalpha() for ch in password):
        problems.append("at least one letter")
    if not any(ch.isdigit() for ch in password):
        problems.append("at least one digit")
    if password.strip() != password:
        problems.append("no leading or trailing spaces")
    if email and password.lower() == email.lower():
        problems.append("not the same as the email address")
    return problems


def check_password_policy(password: str, *, email: str | None = None) -> None:
    problems = password_problems(password, email=email)
    if problems:
        raise PasswordPolicyError(
            "The password needs " + ", ".join(problems), details={"field": "password", "requirements": problems}
        )


def hash_password(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(get_settings().password_hash_rounds)).decode()


def verify_password(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(password.encode()[:MAX_PASSWORD_BYTES], password_hash.encode())
    except ValueError:
        return False


@functools.cache
def dummy_password_hash(rounds: int) -> str:
    """Checked when the email is unknown, so a wrong email costs the same time as a wrong password."""
    return bcrypt.hashpw(b"timing-equalizer", bcrypt.gensalt(rounds)).decode()
