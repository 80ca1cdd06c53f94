"""What a message or question node sends, as the message spec the send API takes
(`{"type": "text", "text": {"body": ...}}`, media, `{"type": "template", "template_id", "variables"}`,
interactive buttons or list), built with the same builders the sends pool uses.
"""

from __future__ import annotations

from typing import Any, Callable

from shared.flows.templating import placeholder_problems, render_all
from shared.whatsapp import outbound

MESSAGE_KINDS = ("text", *sorted(outbound.MEDIA_TYPES), "template", "buttons", "list")


def _interactive(data: dict[str, Any], kind: str) -> dict[str, Any]:
    body, header, footer = data.get("text") or "", data.get("header"), data.get("footer")
    if kind == "buttons":
        buttons = [(button["id"], button["title"]) for button in data.get("buttons") or []]
        return outbound.reply_buttons_content(body, buttons, header=header, footer=footer)
    listing = data.get("list") or {}
    return outbound.list_content(body, listing.get("button") or "", listing.get("sections") or [],
                                 header=header, footer=footer)


def _build(data: dict[str, Any], kind: str) -> dict[str, Any]:
    """Raises ValueError, KeyError or TypeError for what the send API would refuse."""
    if kind == "text":
        return {"type": "text", "text": outbound.text_content(data.get("text") or "",
                                                              preview_url=bool(data.get("preview_url")))}
    if kind in outbound.MEDIA_TYPES:
        content = outbound.media_content(kind, media_id=data.get("media_id"), link=data.get("link"),
                                         caption=data.get("caption"), filename=data.get("filename"))
        return {"type": kind, kind: content}
    if kind == "template":
        if not isinstance(data.get("template_id"), str) or not data["template_id"]:
            raise ValueError("a template message needs template_id")
        if not isinstance(data.get("variables") or {}, dict):
            raise ValueError("template variables must be an object")
        return {"type": "template", "template_id": data["template_id"], "variables": data.get("variables") or {}}
    if kind in ("buttons", "list"):
        return {"type": "interactive", "interactive": _interactive(data, kind)}
    raise ValueError(f"kind must be one of {', '.join(MESSAGE_KINDS)}")


def question_kind(data: dict[str, Any]) -> str:
    if data.get("answer_type") == "choice":
        return "list" if data.get("list") else "buttons"
    return "text"


def build_message(data: dict[str, Any], kind: str, lookup: Callable[[tuple], Any]) -> dict[str, Any]:
    """The spec to send, with {{variables}} rendered; raises ValueError when the rendered message is unsendable."""
    try:
        return _build(render_all(data, lookup), kind)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"the message is incomplete: {exc}") from exc


def message_problems(data: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """(field, message) pairs for content the send API would refuse, checked before any rendering."""
    problems = [("text", problem) for problem in placeholder_problems(data.get("text"))]
    try:
        _build(data, kind)
    except ValueError as exc:
        problems.append(("kind" if str(exc).startswith("kind") else kind, str(exc)))
    except KeyError as exc:
        problems.append((kind, f"the field {exc.args[0]!r} is missing"))
    except (TypeError, AttributeError):
        problems.append((kind, "a field has the wrong type (texts as strings, lists as lists)"))
    return problems
