"""Simulated customers: turn control-API specs into Meta's inbound `messages` webhook value.

A spec is Meta's own message shape without the parts the sandbox fills in (`id`, `timestamp`,
media `sha256`, `context.from`), e.g. `{"from": "16505551234", "type": "text", "text": {"body": "Hi"}}`.
A reply to a message the number sent needs only `{"context": {"id": "<wamid>"}, "text": "Thanks"}`
(`from` is its recipient), and a tap on that template's quick-reply button only
`{"context": {"id": "<wamid>"}, "type": "button", "button": {"index": 0}}` (payload and label filled in).
Building a message opens the user's 24-hour window and counts toward the number's throughput.
All functions here expect `state.lock` to be held.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from sandbox import limits, media
from sandbox.errors import async_error
from sandbox.state import (
    INBOUND_MEDIA_TTL,
    ConfigError,
    InboundMessage,
    Number,
    SandboxState,
    SentMessage,
    digits,
    new_wamid,
)
from sandbox.webhooks import messages_value, status_object

MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
INBOUND_TYPES = ("text", *MEDIA_KINDS, "location", "contacts", "interactive", "button", "reaction", "order",
                 "system", "unsupported")
INTERACTIVE_REPLIES = {"button_reply": ("id", "title"), "list_reply": ("id", "title"), "nfm_reply": ("response_json",)}
STATUS_NAMES = ("sent", "delivered", "read", "failed", "played")
DEFAULT_REFERRAL = {
    "source_url": "https://fb.me/sandbox-ad",
    "source_id": "120208000000000000",
    "source_type": "ad",
    "headline": "Chat with us",
    "body": "Tap to send us a message",
    "media_type": "image",
    "image_url": "https://example.invalid/sandbox-ad.jpg",
    "thumbnail_url": "https://example.invalid/sandbox-ad-thumb.jpg",
}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _media_object(state: SandboxState, number: Number, kind: str, spec: dict) -> dict:
    """The inbound media object; creates downloadable media (7 days) unless an id is given."""
    mime_type = spec.get("mime_type") or media.DEFAULT_MIME[kind]
    if "id" in spec:
        stored = state.media.get(str(spec["id"]))
        obj = {"id": str(spec["id"]), "mime_type": stored.mime_type if stored else mime_type,
               "sha256": stored.sha256 if stored else spec.get("sha256", secrets.token_hex(32))}
    else:
        try:
            data = base64.b64decode(spec["data_base64"], validate=True) if "data_base64" in spec else (
                f"sandbox {kind} bytes".encode())
        except (binascii.Error, TypeError):
            raise ConfigError(f"{kind}.data_base64 is not valid base64") from None
        stored = media.store(state, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                             mime_type=mime_type, data=data, ttl=INBOUND_MEDIA_TTL, filename=spec.get("filename"))
        obj = {"id": stored.id, "mime_type": stored.mime_type, "sha256": stored.sha256}
    for key, kinds in (("caption", ("image", "video", "document")), ("filename", ("document",)),
                       ("voice", ("audio",)), ("animated", ("sticker",)), ("url", MEDIA_KINDS)):
        if key in spec and kind in kinds:
            obj[key] = spec[key]
    return obj


def _content(state: SandboxState, number: Number, kind: str, spec: dict):
    content = spec.get(kind)
    if kind == "text":
        if isinstance(content, str):
            content = {"body": content}
        _require(isinstance(content, dict) and isinstance(content.get("body"), str), "text.body is required")
        return {"body": content["body"]}
    if kind in MEDIA_KINDS:
        _require(content is None or isinstance(content, dict), f"{kind} must be an object")
        return _media_object(state, number, kind, content or {})
    if kind == "contacts":
        _require(isinstance(content, list) and content, "contacts must be a non-empty list")
        return content
    if kind == "unsupported":
        return content
    _require(isinstance(content, dict), f"{kind} must be an object")
    if kind == "location":
        _require(all(isinstance(content.get(k), (int, float)) for k in ("latitude", "longitude")),
                 "location.latitude and location.longitude are required numbers")
    elif kind == "interactive":
        reply_type = content.get("type")
        _require(reply_type in INTERACTIVE_REPLIES, f"interactive.type must be one of {', '.join(INTERACTIVE_REPLIES)}")
        reply = content.get(reply_type)
        _require(isinstance(reply, dict) and all(k in reply for k in INTERACTIVE_REPLIES[reply_type]),
                 f"interactive.{reply_type} needs {', '.join(INTERACTIVE_REPLIES[reply_type])}")
    elif kind == "button":
        _require(all(isinstance(content.get(k), str) for k in ("payload", "text")),
                 "button.payload and button.text are required")
    elif kind == "reaction":
        _require(isinstance(content.get("message_id"), str), "reaction.message_id is required")
    elif kind == "order":
        _require(isinstance(content.get("product_items"), list), "order.product_items is required")
    elif kind == "system":
        _require(isinstance(content.get("type"), str), "system.type is required")
    return content


def _replied_to(state: SandboxState, number: Number, spec: dict) -> SentMessage | None:
    """The message of this number that `context.id` quotes, if the sandbox sent it."""
    context = spec.get("context")
    sent = state.sent.get(str(context.get("id"))) if isinstance(context, dict) and "id" in context else None
    return sent if sent is not None and sent.phone_number_id == number.phone_number_id else None


def _template_click(state: SandboxState, number: Number, sent: SentMessage | None, choice) -> dict:
    """`{"payload", "text"}` of a tap on quick-reply button `index` of the template `sent` carried.

    The payload is the one the send gave that button, else its label, as Meta answers."""
    index = choice if isinstance(choice, int) else choice.get("index")
    _require(isinstance(index, int) and not isinstance(index, bool), "button.index must be a whole number")
    _require(sent is not None and sent.type == "template",
             "button.index needs context.id naming a template message this number sent")
    template = sent.request.get("template") or {}
    name, language = template.get("name"), (template.get("language") or {}).get("code")
    definition = next((t for t in state.templates.values()
                       if t.waba_id == number.waba_id and t.name == name and t.language == language), None)
    buttons = next((c.get("buttons") or [] for c in (definition.components if definition else [])
                    if str(c.get("type", "")).upper() == "BUTTONS"), [])
    _require(0 <= index < len(buttons) and str(buttons[index].get("type", "")).upper() == "QUICK_REPLY",
             f"button {index} of template {name!r} is not a quick-reply button")
    label = buttons[index].get("text", "")
    payload = next((parameter.get("payload") for component in template.get("components") or []
                    if component.get("sub_type") == "quick_reply" and str(component.get("index")) == str(index)
                    for parameter in component.get("parameters") or []), None)
    return {"payload": payload or label, "text": label}


def build_message(state: SandboxState, number: Number, spec: dict, now: float) -> tuple[str, str | None, dict]:
    """(wa_id, profile name, Meta's message object) for one spec.

    With `context.id` naming a message this number sent, `from` defaults to its recipient, and a
    `"button": {"index": n}` (or just `n`) is a tap on that template's quick-reply button n."""
    _require(isinstance(spec, dict), "each message must be an object")
    replied = _replied_to(state, number, spec)
    wa_id = digits(str(spec.get("from") or (replied.wa_id if replied else "")))
    _require(6 <= len(wa_id) <= 15, "from (the customer's phone number) is required")
    kind = spec.get("type", "text")
    _require(kind in INBOUND_TYPES, f"type must be one of {', '.join(INBOUND_TYPES)}")
    message = {"from": wa_id, "id": new_wamid(), "timestamp": str(int(spec.get("timestamp", now))), "type": kind}
    context = spec.get("context")
    if context is not None:
        _require(isinstance(context, dict), "context must be an object")
        context = dict(context)
        if "id" in context:
            context.setdefault("from", number.display_phone_number)
        message["context"] = context
    choice = spec.get("button")
    if kind == "button" and (isinstance(choice, int) or (isinstance(choice, dict) and "index" in choice)):
        spec = {**spec, "button": _template_click(state, number, replied, choice)}
    content = _content(state, number, kind, spec)
    if kind == "unsupported":
        message["errors"] = [async_error(131051, "Message type is currently not supported.")]
        if content:
            message["unsupported"] = content
    else:
        message[kind] = content
    referral = spec.get("referral")
    if referral:
        _require(referral is True or isinstance(referral, dict), "referral must be true or an object")
        message["referral"] = {**DEFAULT_REFERRAL, "ctwa_clid": secrets.token_urlsafe(24),
                               **(referral if isinstance(referral, dict) else {})}
    return wa_id, spec.get("name"), message


def _status(state: SandboxState, number: Number, spec: dict, now: float) -> dict:
    _require(isinstance(spec, dict), "each status must be an object")
    sent = state.sent.get(str(spec.get("id")))
    _require(sent is not None and sent.phone_number_id == number.phone_number_id,
             f"status id {spec.get('id')!r} is not a message this number sent")
    status = spec.get("status")
    _require(status in STATUS_NAMES, f"status must be one of {', '.join(STATUS_NAMES)}")
    timestamp = str(int(spec.get("timestamp", now)))
    errors = None
    if status == "failed":
        errors = [async_error(int(spec.get("error_code", 131026)), spec.get("error_details"))]
    sent.statuses.append((status, timestamp))
    return status_object(sent, status, timestamp, errors=errors)


def split_specs(data: dict) -> tuple[list, list]:
    """The message specs and status specs of a request: `messages`/`statuses` lists, or one message inline."""
    _require(isinstance(data, dict), "expected a JSON object")
    if "messages" in data or "statuses" in data:
        messages, statuses = data.get("messages", []), data.get("statuses", [])
        _require(isinstance(messages, list) and isinstance(statuses, list), "messages and statuses must be lists")
    else:
        messages, statuses = [data], []
    _require(bool(messages or statuses), "nothing to send: give messages and/or statuses")
    defaults = {key: data[key] for key in ("from", "name") if key in data}
    return [{**defaults, **spec} if isinstance(spec, dict) else spec for spec in messages], statuses


def value_for(state: SandboxState, number: Number, data: dict) -> tuple[dict, list[str]]:
    """Build one `messages` change value for a number and apply its effects (windows, throughput, records)."""
    now = state.clock.now()
    message_specs, status_specs = split_specs(data)
    built = [build_message(state, number, spec, now) for spec in message_specs]
    statuses = [_status(state, number, spec, now) for spec in status_specs]
    contacts: dict[str, dict] = {}
    messages = []
    for wa_id, name, message in built:
        customer = state.customer(number.phone_number_id, wa_id)
        if message["type"] != "system":  # system notices (number changed...) carry no contacts, open no window
            contacts.setdefault(wa_id, {"profile": {"name": name or f"Customer {wa_id[-4:]}"}, "wa_id": wa_id})
            customer.last_inbound_at = now
        if "referral" in message:
            customer.referral_at = now
        limits.count_throughput(number, now)
        state.inbound[message["id"]] = InboundMessage(message["id"], number.phone_number_id, wa_id, message)
        messages.append(message)
    value = messages_value(number, contacts=list(contacts.values()), messages=messages, statuses=statuses)
    return value, [message["id"] for message in messages]
