"""A customer's answer to a question, checked against the question's type and turned into the value stored.

`read_answer` returns (True, value) or (False, None). Choices are matched by the button or list row
id the click carries, never by its title: two rows may share a title, and titles get translated.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from email_validator import EmailNotValidError, validate_email

from shared.phones import InvalidPhoneError, normalize_phone

ANSWER_TYPES = ("text", "number", "email", "phone", "date", "choice")
_DMY = re.compile(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})")
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d+)?|[.,]\d+)")
REFUSED = (False, None)


def _text_of(event: dict[str, Any]) -> str | None:
    text = event.get("text") if event.get("type") == "text" else None
    return text.strip() if isinstance(text, str) and text.strip() else None


def _number(text: str, data: dict[str, Any]) -> tuple[bool, Any]:
    if not _NUMBER.fullmatch(text.replace(" ", "")):
        return REFUSED
    value = float(text.replace(" ", "").replace(",", "."))
    if (data.get("min") is not None and value < data["min"]) or (data.get("max") is not None and value > data["max"]):
        return REFUSED
    return True, int(value) if value.is_integer() else value


def _email(text: str) -> tuple[bool, Any]:
    try:
        return True, validate_email(text, check_deliverability=False).normalized
    except EmailNotValidError:
        return REFUSED


def _phone(text: str, context: dict[str, Any]) -> tuple[bool, Any]:
    try:
        return True, normalize_phone(text, default_country=context.get("default_country")).e164
    except InvalidPhoneError:
        return REFUSED


def _date(text: str) -> tuple[bool, Any]:
    """ISO (2026-03-31) or day first (31/03/2026), as most of WhatsApp's world writes dates."""
    try:
        match = _DMY.fullmatch(text)
        day = dt.date(int(match[3]), int(match[2]), int(match[1])) if match else dt.date.fromisoformat(text)
    except ValueError:
        return REFUSED
    return True, day.isoformat()


def choice_ids(data: dict[str, Any]) -> list[str]:
    """The ids of a question's (or an interactive message's) buttons, or of its list rows."""
    ids = [button.get("id") for button in data.get("buttons") or [] if isinstance(button, dict)]
    for section in (data.get("list") or {}).get("sections") or []:
        if isinstance(section, dict):
            ids += [row.get("id") for row in section.get("rows") or [] if isinstance(row, dict)]
    return [choice for choice in ids if isinstance(choice, str)]


def read_answer(data: dict[str, Any], event: dict[str, Any], context: dict[str, Any]) -> tuple[bool, Any]:
    answer_type = data.get("answer_type", "text")
    if answer_type == "choice":
        clicked = event.get("id") if event.get("type") in ("button", "list") else None
        return (True, clicked) if clicked in choice_ids(data) else REFUSED
    text = _text_of(event)
    if text is None:
        return REFUSED
    if answer_type == "number":
        return _number(text, data)
    if answer_type == "email":
        return _email(text)
    if answer_type == "phone":
        return _phone(text, context)
    if answer_type == "date":
        return _date(text)
    return True, text
