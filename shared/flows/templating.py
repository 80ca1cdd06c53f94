"""`{{variables}}` in texts: `{{vars.order_id}}`, `{{contact.name}}`, `{{attributes.tier}}`,
`{{system.date}}`, a bare `{{order_id}}` (short for vars.order_id), and a fallback after a bar:
`{{contact.name | there}}`. A value that is missing renders as the fallback, or as nothing.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from shared.flows.expressions import ROOTS

PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PATH = re.compile(r"\s*([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[\d+\])*)\s*(?:\|(.*))?$", re.DOTALL)
_PART = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]")


def _path(inside: str) -> tuple[tuple, str] | None:
    match = _PATH.match(inside)
    if match is None:
        return None
    root, rest, fallback = match.group(1), match.group(2), (match.group(3) or "").strip()
    parts: list[str | int] = [name if name else int(index) for name, index in _PART.findall(rest)]
    if root in ROOTS and parts:
        return (root, *parts), fallback
    return ("vars", root, *parts), fallback


def placeholder_problems(text: Any) -> list[str]:
    """What is wrong with the placeholders of a text (nothing for a text without any)."""
    if not isinstance(text, str):
        return []
    return [f"{{{{{inside}}}}} is not a variable (write e.g. {{{{vars.name}}}} or {{{{contact.name}}}})"
            for inside in PLACEHOLDER.findall(text) if _path(inside) is None]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return ", ".join(map(_text, value)) if isinstance(value, list) else json.dumps(value, ensure_ascii=False)
    return str(value)


def render(text: str, lookup: Callable[[tuple], Any]) -> str:
    def replace(match: re.Match) -> str:
        parsed = _path(match.group(1))
        if parsed is None:
            return match.group(0)
        value = _text(lookup(parsed[0]))
        return value if value != "" else parsed[1]

    return PLACEHOLDER.sub(replace, text)


def render_all(value: Any, lookup: Callable[[tuple], Any]) -> Any:
    """Every string inside `value` (dicts and lists walked) rendered."""
    if isinstance(value, str):
        return render(value, lookup)
    if isinstance(value, list):
        return [render_all(item, lookup) for item in value]
    if isinstance(value, dict):
        return {key: render_all(item, lookup) for key, item in value.items()}
    return value
