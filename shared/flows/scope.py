"""What a path (`vars.age`, `contact.tags`, `attributes.tier`, `system.now`) reads during a step.

Session variables live in two layers: the current flow's own (`locals`, reset to the flow's defaults
when a jump enters another flow) over the chatbot-wide ones (`globals`). Writing a name the current
flow declares writes the flow's layer; any other name is chatbot-wide.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CONTACT_FIELDS = ("name", "phone", "email", "lead_score", "lifecycle_stage", "tags", "attributes")


def read_variable(state: dict[str, Any], name: str) -> Any:
    if name in state["locals"]:
        return state["locals"][name]
    return state["globals"].get(name)


def write_variable(state: dict[str, Any], name: str, value: Any) -> None:
    layer = state["locals"] if name in state["locals"] else state["globals"]
    layer[name] = value


def system_values(context: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """`now` and its parts in the organization's timezone (context["timezone"], UTC when unknown)."""
    now = context["now"]
    try:
        local = now.astimezone(ZoneInfo(context.get("timezone") or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        local = now.astimezone(dt.timezone.utc)
    return {
        "now": local.isoformat(timespec="seconds"),
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "hour": local.hour,
        "weekday": local.isoweekday(),  # 1 = Monday … 7 = Sunday
        "number": context.get("number"),
        "last_message": state.get("last_message"),
    }


def _descend(value: Any, part: str | int) -> Any:
    if isinstance(part, int):
        return value[part] if isinstance(value, list) and -len(value) <= part < len(value) else None
    return value.get(part) if isinstance(value, dict) else None


def resolve(path: tuple, *, state: dict[str, Any], contact: dict[str, Any], context: dict[str, Any]) -> Any:
    root, first, rest = path[0], path[1], path[2:]
    if root == "vars":
        value = read_variable(state, first) if isinstance(first, str) else None
    elif root == "contact":
        value = contact.get(first) if first in CONTACT_FIELDS else None
    elif root == "attributes":
        value = (contact.get("attributes") or {}).get(first)
    else:
        value = system_values(context, state).get(first)
    for part in rest:
        value = _descend(value, part)
    return value


def contact_view(contact: dict[str, Any] | None) -> dict[str, Any]:
    """The contact fields a flow may read, with lists and dicts copied (actions change the copy)."""
    contact = contact or {}
    view = {field: contact.get(field) for field in CONTACT_FIELDS}
    view["tags"] = list(contact.get("tags") or [])
    view["attributes"] = dict(contact.get("attributes") or {})
    view["lead_score"] = contact.get("lead_score") or 0
    return view
