"""Shape checks for `POST /{version}/{phone_number_id}/messages`, as Meta does them (code 100 when malformed).

Only the shape is checked here; whether a template exists, whether the window is open and the limits
belong to the send pipeline (`sandbox/messages.py`).
"""

from __future__ import annotations

import re

from sandbox.errors import invalid

MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")
CAPTIONED = ("image", "video", "document")
MESSAGE_TYPES = ("text", *MEDIA_TYPES, "reaction", "location", "contacts", "interactive", "template")
# Interactive kinds the sandbox accepts without inspecting beyond `action` (it validates button and list).
OTHER_INTERACTIVE = (
    "cta_url",
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "location_request_message",
    "address_message",
    "call_permission_request",
    "voice_call",
)
PARAMETER_TYPES = (
    "text",
    "currency",
    "date_time",
    "image",
    "video",
    "document",
    "location",
    "payload",
    "coupon_code",
    "action",
    "product",
)
PHONE = re.compile(r"^\+?[\d\s().-]+$")


def _object(container: dict, key: str, path: str, *, required: bool = True) -> dict | None:
    value = container.get(key)
    if value is None:
        if required:
            raise invalid(f"The parameter {path} is required.")
        return None
    if not isinstance(value, dict):
        raise invalid(f"The parameter {path} must be a JSON object.")
    return value


def _text(container: dict, key: str, path: str, *, max_len: int | None = None, required: bool = True, empty_ok=False):
    value = container.get(key)
    if value is None:
        if required:
            raise invalid(f"The parameter {path} is required.")
        return None
    if not isinstance(value, str) or (not value and not empty_ok):
        raise invalid(f"The parameter {path} must be a non-empty string.")
    if max_len is not None and len(value) > max_len:
        raise invalid(f"The parameter {path} must be at most {max_len} characters long.")
    return value


def _list(container: dict, key: str, path: str, *, min_len: int = 1, max_len: int | None = None) -> list:
    value = container.get(key)
    if value is None:
        raise invalid(f"The parameter {path} is required.")
    if not isinstance(value, list) or len(value) < min_len:
        raise invalid(f"The parameter {path} must be a list with at least {min_len} item(s).")
    if max_len is not None and len(value) > max_len:
        raise invalid(f"The parameter {path} must have at most {max_len} items.")
    return value


def validate_send(body) -> dict:
    """Check a send request; answer {to, digits, type, content} or raise code 100."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.")
    if body.get("messaging_product") != "whatsapp":
        raise invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    if body.get("recipient_type", "individual") != "individual":
        raise invalid("The parameter recipient_type must be 'individual'.")
    to = _text(body, "to", "to")
    phone_digits = re.sub(r"\D", "", to)
    if not PHONE.match(to) or not 6 <= len(phone_digits) <= 15:
        raise invalid(f"The parameter to ('{to}') is not a valid phone number.")
    message_type = body.get("type", "text")
    if message_type not in MESSAGE_TYPES:
        raise invalid(f"The parameter type must be one of {{{', '.join(MESSAGE_TYPES)}}}.")
    if message_type == "contacts":
        content = _list(body, "contacts", "contacts")
        _validate_contacts(content)
    else:
        content = _object(body, message_type, message_type)
        VALIDATORS[message_type](content)
    context = _object(body, "context", "context", required=False)
    if context is not None:
        _text(context, "message_id", "context.message_id")
    opaque = body.get("biz_opaque_callback_data")
    if opaque is not None and (not isinstance(opaque, str) or len(opaque) > 512):
        raise invalid("The parameter biz_opaque_callback_data must be a string of at most 512 characters.")
    return {"to": to, "digits": phone_digits, "type": message_type, "content": content}


def validate_mark_read(body: dict) -> str:
    if body.get("messaging_product") != "whatsapp":
        raise invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    if body.get("status") != "read":
        raise invalid("The parameter status must be 'read'.")
    message_id = _text(body, "message_id", "message_id")
    indicator = _object(body, "typing_indicator", "typing_indicator", required=False)
    if indicator is not None and indicator.get("type") != "text":
        raise invalid("The parameter typing_indicator.type must be 'text'.")
    return message_id


def _validate_text(text: dict) -> None:
    _text(text, "body", "text.body", max_len=4096)
    if "preview_url" in text and not isinstance(text["preview_url"], bool):
        raise invalid("The parameter text.preview_url must be a boolean.")


def _validate_media(kind: str):
    def validate(media: dict) -> None:
        has_id, has_link = "id" in media, "link" in media
        if has_id == has_link:
            raise invalid(f"The parameter {kind} must have exactly one of {kind}.id or {kind}.link.")
        if has_id:
            _text(media, "id", f"{kind}.id")
        else:
            link = _text(media, "link", f"{kind}.link")
            if not re.match(r"^https?://[^\s/]+", link):
                raise invalid(f"The parameter {kind}.link must be an http(s) URL.")
        if "caption" in media:
            if kind not in CAPTIONED:
                raise invalid(f"The parameter {kind}.caption is not allowed on {kind} messages.")
            _text(media, "caption", f"{kind}.caption", max_len=1024)
        if "filename" in media:
            if kind != "document":
                raise invalid(f"The parameter {kind}.filename is only allowed on document messages.")
            _text(media, "filename", "document.filename", max_len=240)

    return validate


def _validate_reaction(reaction: dict) -> None:
    _text(reaction, "message_id", "reaction.message_id")
    # An empty emoji removes the reaction.
    _text(reaction, "emoji", "reaction.emoji", empty_ok=True)


def _coordinate(location: dict, key: str, bound: float) -> None:
    value = location.get(key)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not -bound <= value <= bound:
        raise invalid(f"The parameter location.{key} must be a number between -{bound:g} and {bound:g}.")


def _validate_location(location: dict) -> None:
    _coordinate(location, "latitude", 90)
    _coordinate(location, "longitude", 180)
    _text(location, "name", "location.name", required=False, max_len=1000)
    _text(location, "address", "location.address", required=False, max_len=1000)


def _validate_contacts(contacts: list) -> None:
    for index, contact in enumerate(contacts):
        path = f"contacts[{index}]"
        if not isinstance(contact, dict):
            raise invalid(f"The parameter {path} must be a JSON object.")
        name = _object(contact, "name", f"{path}.name")
        _text(name, "formatted_name", f"{path}.name.formatted_name")
        for key in ("phones", "emails", "addresses", "urls"):
            if key in contact and not (
                isinstance(contact[key], list) and all(isinstance(item, dict) for item in contact[key])
            ):
                raise invalid(f"The parameter {path}.{key} must be a list of objects.")


def _validate_interactive(interactive: dict) -> None:
    kind = interactive.get("type")
    if kind == "button":
        _validate_reply_buttons(interactive)
    elif kind == "list":
        _validate_list(interactive)
    elif kind in OTHER_INTERACTIVE:
        _object(interactive, "action", "interactive.action")
    else:
        kinds = ", ".join(("button", "list", *OTHER_INTERACTIVE))
        raise invalid(f"The parameter interactive.type must be one of {{{kinds}}}.")


def _validate_header(interactive: dict, allowed: tuple[str, ...]) -> None:
    header = _object(interactive, "header", "interactive.header", required=False)
    if header is None:
        return
    kind = header.get("type")
    if kind not in allowed:
        raise invalid(f"The parameter interactive.header.type must be one of {{{', '.join(allowed)}}}.")
    if kind == "text":
        _text(header, "text", "interactive.header.text", max_len=60)
    else:
        _validate_media(kind)(_object(header, kind, f"interactive.header.{kind}"))


def _validate_body_and_footer(interactive: dict, body_max: int) -> None:
    _text(_object(interactive, "body", "interactive.body"), "text", "interactive.body.text", max_len=body_max)
    footer = _object(interactive, "footer", "interactive.footer", required=False)
    if footer is not None:
        _text(footer, "text", "interactive.footer.text", max_len=60)


def _validate_reply_buttons(interactive: dict) -> None:
    _validate_header(interactive, ("text", "image", "video", "document"))
    _validate_body_and_footer(interactive, 1024)
    buttons = _list(_object(interactive, "action", "interactive.action"), "buttons", "interactive.action.buttons",
                    max_len=3)
    ids, titles = set(), set()
    for index, button in enumerate(buttons):
        path = f"interactive.action.buttons[{index}]"
        if not isinstance(button, dict) or button.get("type") != "reply":
            raise invalid(f"The parameter {path}.type must be 'reply'.")
        reply = _object(button, "reply", f"{path}.reply")
        button_id = _text(reply, "id", f"{path}.reply.id", max_len=256)
        title = _text(reply, "title", f"{path}.reply.title", max_len=20)
        if button_id in ids or title in titles:
            raise invalid("Button ids and titles must be unique.")
        ids.add(button_id)
        titles.add(title)


def _validate_list(interactive: dict) -> None:
    _validate_header(interactive, ("text",))
    _validate_body_and_footer(interactive, 1024)  # the reference uses 1024 (Meta leaves it unconfirmed)
    action = _object(interactive, "action", "interactive.action")
    _text(action, "button", "interactive.action.button", max_len=20)
    sections = _list(action, "sections", "interactive.action.sections", max_len=10)
    row_ids: set[str] = set()
    for s_index, section in enumerate(sections):
        path = f"interactive.action.sections[{s_index}]"
        if not isinstance(section, dict):
            raise invalid(f"The parameter {path} must be a JSON object.")
        _text(section, "title", f"{path}.title", max_len=24, required=len(sections) > 1)
        for r_index, row in enumerate(_list(section, "rows", f"{path}.rows")):
            row_path = f"{path}.rows[{r_index}]"
            if not isinstance(row, dict):
                raise invalid(f"The parameter {row_path} must be a JSON object.")
            row_id = _text(row, "id", f"{row_path}.id", max_len=200)
            _text(row, "title", f"{row_path}.title", max_len=24)
            _text(row, "description", f"{row_path}.description", max_len=72, required=False)
            if row_id in row_ids:
                raise invalid("Row ids must be unique.")
            row_ids.add(row_id)
    if len(row_ids) > 10:
        raise invalid("A list message may have at most 10 rows in total.")


def _validate_template(template: dict) -> None:
    _text(template, "name", "template.name", max_len=512)
    _text(_object(template, "language", "template.language"), "code", "template.language.code")
    components = template.get("components", [])
    if not isinstance(components, list):
        raise invalid("The parameter template.components must be a list.")
    for index, component in enumerate(components):
        path = f"template.components[{index}]"
        if not isinstance(component, dict):
            raise invalid(f"The parameter {path} must be a JSON object.")
        kind = str(component.get("type", "")).lower()
        if kind not in ("header", "body", "button"):
            raise invalid(f"The parameter {path}.type must be one of {{header, body, button}}.")
        if kind == "button":
            _text(component, "sub_type", f"{path}.sub_type")
            if not str(component.get("index", "")).isdigit():
                raise invalid(f"The parameter {path}.index must be a button position (0, 1, ...).")
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            raise invalid(f"The parameter {path}.parameters must be a list.")
        for p_index, parameter in enumerate(parameters):
            p_path = f"{path}.parameters[{p_index}]"
            if not isinstance(parameter, dict) or parameter.get("type") not in PARAMETER_TYPES:
                raise invalid(f"The parameter {p_path}.type must be one of {{{', '.join(PARAMETER_TYPES)}}}.")
            ptype = parameter["type"]
            if ptype in ("text", "payload", "coupon_code"):
                _text(parameter, ptype, f"{p_path}.{ptype}")
            elif ptype in ("image", "video", "document"):
                _validate_media(ptype)(_object(parameter, ptype, f"{p_path}.{ptype}"))
            elif ptype == "currency":
                currency = _object(parameter, "currency", f"{p_path}.currency")
                _text(currency, "fallback_value", f"{p_path}.currency.fallback_value")
                _text(currency, "code", f"{p_path}.currency.code")
                if not isinstance(currency.get("amount_1000"), int):
                    raise invalid(f"The parameter {p_path}.currency.amount_1000 must be an integer.")
            elif ptype == "date_time":
                _text(_object(parameter, "date_time", f"{p_path}.date_time"), "fallback_value",
                      f"{p_path}.date_time.fallback_value")
            elif ptype == "location":
                _validate_location(_object(parameter, "location", f"{p_path}.location"))


VALIDATORS = {
    "text": _validate_text,
    **{kind: _validate_media(kind) for kind in MEDIA_TYPES},
    "reaction": _validate_reaction,
    "location": _validate_location,
    "interactive": _validate_interactive,
    "template": _validate_template,
}


def media_ids(message_type: str, content) -> list[tuple[str, str]]:
    """(expected media kind, id) for every uploaded-media id a validated message refers to."""
    found = []
    if message_type in MEDIA_TYPES and "id" in content:
        found.append((message_type, content["id"]))
    elif message_type == "interactive":
        header = content.get("header") or {}
        kind = header.get("type")
        if kind in MEDIA_TYPES and "id" in header.get(kind, {}):
            found.append((kind, header[kind]["id"]))
    elif message_type == "template":
        for component in content.get("components", []):
            for parameter in component.get("parameters", []):
                kind = parameter.get("type")
                if kind in MEDIA_TYPES and "id" in parameter.get(kind, {}):
                    found.append((kind, parameter[kind]["id"]))
    return found
