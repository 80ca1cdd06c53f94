"""JSON bodies for `POST /{phone-number-id}/messages` (reference §2). Pure functions, no I/O.

Only limits that are structural (counts, which fields a type takes, the callback-data size) are
checked here, so a mistake fails before the network; Meta remains the judge of everything else.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
CAPTIONED_MEDIA_TYPES = frozenset({"image", "video", "document"})
MAX_TEXT_BODY_CHARS = 4096
MAX_CALLBACK_DATA_CHARS = 512
MAX_REPLY_BUTTONS = 3
MAX_LIST_SECTIONS = 10
MAX_LIST_ROWS = 10  # in total, across sections


def message_envelope(
    to: str,
    message_type: str,
    content: Any,
    *,
    context_message_id: str | None = None,
    biz_opaque_callback_data: str | None = None,
) -> dict[str, Any]:
    if not to:
        raise ValueError("recipient `to` is required")
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": message_type,
        message_type: content,
    }
    if context_message_id:
        body["context"] = {"message_id": context_message_id}
    if biz_opaque_callback_data is not None:
        if len(biz_opaque_callback_data) > MAX_CALLBACK_DATA_CHARS:
            raise ValueError(f"biz_opaque_callback_data is limited to {MAX_CALLBACK_DATA_CHARS} characters")
        body["biz_opaque_callback_data"] = biz_opaque_callback_data
    return body


def text_content(body: str, *, preview_url: bool = False) -> dict[str, Any]:
    if not body:
        raise ValueError("text body is empty")
    if len(body) > MAX_TEXT_BODY_CHARS:
        raise ValueError(f"text body is limited to {MAX_TEXT_BODY_CHARS} characters")
    content: dict[str, Any] = {"body": body}
    if preview_url:
        content["preview_url"] = True
    return content


def media_content(
    media_type: str,
    *,
    media_id: str | None = None,
    link: str | None = None,
    caption: str | None = None,
    filename: str | None = None,
) -> dict[str, Any]:
    if media_type not in MEDIA_TYPES:
        raise ValueError(f"media type must be one of {sorted(MEDIA_TYPES)}, not {media_type!r}")
    if (media_id is None) == (link is None):
        raise ValueError("give exactly one of media_id or link")
    if caption is not None and media_type not in CAPTIONED_MEDIA_TYPES:
        raise ValueError(f"{media_type} messages take no caption")
    if filename is not None and media_type != "document":
        raise ValueError("only documents take a filename")
    content: dict[str, Any] = {"id": media_id} if media_id is not None else {"link": link}
    if caption is not None:
        content["caption"] = caption
    if filename is not None:
        content["filename"] = filename
    return content


def template_content(name: str, language: str, components: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    if not name or not language:
        raise ValueError("a template needs its name and its exact approved language code")
    content: dict[str, Any] = {"name": name, "language": {"code": language}}
    if components:
        content["components"] = [dict(component) for component in components]
    return content


def _header(header: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "text", "text": header} if isinstance(header, str) else dict(header)


def _body_header_footer(
    body: str, header: str | Mapping[str, Any] | None, footer: str | None
) -> dict[str, Any]:
    if not body:
        raise ValueError("interactive messages need a body text")
    parts: dict[str, Any] = {}
    if header is not None:
        parts["header"] = _header(header)
    parts["body"] = {"text": body}
    if footer is not None:
        parts["footer"] = {"text": footer}
    return parts


def reply_buttons_content(
    body: str,
    buttons: Sequence[tuple[str, str]],
    *,
    header: str | Mapping[str, Any] | None = None,
    footer: str | None = None,
) -> dict[str, Any]:
    """`buttons` are (id, title) pairs; `header` is a text, or a header object (image, video, document)."""
    if not 1 <= len(buttons) <= MAX_REPLY_BUTTONS:
        raise ValueError(f"reply buttons take 1 to {MAX_REPLY_BUTTONS} buttons, got {len(buttons)}")
    titles = [title for _, title in buttons]
    if len(set(titles)) != len(titles):
        raise ValueError("reply button titles must be unique")
    return {
        "type": "button",
        **_body_header_footer(body, header, footer),
        "action": {
            "buttons": [{"type": "reply", "reply": {"id": button_id, "title": title}} for button_id, title in buttons]
        },
    }


def list_content(
    body: str,
    button: str,
    sections: Sequence[Mapping[str, Any]],
    *,
    header: str | None = None,
    footer: str | None = None,
) -> dict[str, Any]:
    """`sections` are `{"title": ..., "rows": [{"id", "title", "description"?}]}`."""
    if not button:
        raise ValueError("a list needs the label of its button")
    if not 1 <= len(sections) <= MAX_LIST_SECTIONS:
        raise ValueError(f"a list takes 1 to {MAX_LIST_SECTIONS} sections, got {len(sections)}")
    rows = sum(len(section.get("rows") or ()) for section in sections)
    if not 1 <= rows <= MAX_LIST_ROWS:
        raise ValueError(f"a list takes 1 to {MAX_LIST_ROWS} rows in total, got {rows}")
    return {
        "type": "list",
        **_body_header_footer(body, header, footer),
        "action": {"button": button, "sections": [dict(section) for section in sections]},
    }


def reaction_content(message_id: str, emoji: str) -> dict[str, Any]:
    """An empty `emoji` removes our reaction."""
    if not message_id:
        raise ValueError("a reaction needs the wamid it reacts to")
    return {"message_id": message_id, "emoji": emoji}


def location_content(
    latitude: float, longitude: float, *, name: str | None = None, address: str | None = None
) -> dict[str, Any]:
    content: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    if name is not None:
        content["name"] = name
    if address is not None:
        content["address"] = address
    return content


def contacts_content(contacts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if not contacts:
        raise ValueError("send at least one contact card")
    for card in contacts:
        if not isinstance(card.get("name"), Mapping) or not card["name"].get("formatted_name"):
            raise ValueError("every contact card needs name.formatted_name")
    return [dict(card) for card in contacts]


def read_receipt(message_id: str, *, typing_indicator: bool = False) -> dict[str, Any]:
    if not message_id:
        raise ValueError("mark_as_read needs the inbound wamid")
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
    if typing_indicator:
        body["typing_indicator"] = {"type": "text"}
    return body
