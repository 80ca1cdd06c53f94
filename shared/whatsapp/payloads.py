"""Webhook bodies (the `whatsapp_business_account` envelope, reference §6) as typed dataclasses.

Pure functions, no I/O. Meta treats every enum as open, so message types, statuses and fields
we do not know pass through with their raw content; only a broken envelope is an error.
Each `raw`/`value` keeps the original dict, so nothing is lost for the event log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Iterator, Mapping

from shared.whatsapp.errors import Classification, classify

WEBHOOK_OBJECT = "whatsapp_business_account"
MESSAGES_FIELD = "messages"


class WebhookPayloadError(ValueError):
    """The body is not a WhatsApp webhook; the message names the offending path."""


@dataclass(frozen=True)
class WebhookError:
    """An asynchronous error item: `statuses[].errors`, `messages[].errors` or `value.errors`."""

    code: int | None
    title: str | None
    message: str | None
    details: str | None
    href: str | None

    @property
    def classification(self) -> Classification:
        return classify(self.code)


@dataclass(frozen=True)
class Metadata:
    phone_number_id: str
    display_phone_number: str | None


@dataclass(frozen=True)
class Contact:
    wa_id: str | None  # absent for users known only by their business-scoped id
    profile_name: str | None
    user_id: str | None  # business-scoped user id (BSUID)


@dataclass(frozen=True)
class MessageContext:
    quoted_message_id: str | None  # the message this one replies to
    quoted_from: str | None
    forwarded: bool
    frequently_forwarded: bool
    referred_product: dict[str, Any] | None


@dataclass(frozen=True)
class InboundMessage:
    wamid: str
    from_wa_id: str | None
    from_user_id: str | None
    timestamp: datetime
    type: str
    content: Any  # the object under the type's key: a dict, or a list for `contacts`; {} when absent
    context: MessageContext | None
    referral: dict[str, Any] | None
    errors: tuple[WebhookError, ...]
    raw: dict[str, Any]


@dataclass(frozen=True)
class Conversation:
    id: str | None
    origin_type: str | None
    expires_at: datetime | None  # only on the first status of a conversation


@dataclass(frozen=True)
class Pricing:
    billable: bool | None
    pricing_model: str | None
    category: str | None
    type: str | None


@dataclass(frozen=True)
class MessageStatus:
    wamid: str
    status: str  # sent, delivered, read, failed, played (open enum)
    timestamp: datetime
    recipient_id: str | None
    recipient_user_id: str | None
    biz_opaque_callback_data: str | None
    conversation: Conversation | None
    pricing: Pricing | None
    errors: tuple[WebhookError, ...]
    raw: dict[str, Any]


@dataclass(frozen=True)
class MessagesChange:
    """A `messages` change: inbound messages and statuses for one of our numbers."""

    waba_id: str
    field: str
    value: dict[str, Any]
    metadata: Metadata
    contacts: tuple[Contact, ...]
    messages: tuple[InboundMessage, ...]
    statuses: tuple[MessageStatus, ...]
    errors: tuple[WebhookError, ...]


@dataclass(frozen=True)
class FieldChange:
    """Any other field (template status/quality/category, number quality, account updates...), value kept as is."""

    waba_id: str
    field: str
    value: dict[str, Any]
    time: datetime | None = None  # the entry's `time`: when Meta says it happened (the same on a redelivery)


Change = MessagesChange | FieldChange


@dataclass(frozen=True)
class Entry:
    waba_id: str
    time: datetime | None
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class WebhookPayload:
    entries: tuple[Entry, ...]

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(change for entry in self.entries for change in entry.changes)


def parse_webhook(body: bytes | str | Mapping[str, Any]) -> WebhookPayload:
    """Parse a webhook POST body (raw bytes, text or decoded JSON); raises `WebhookPayloadError`."""
    document = _document(body)
    if document.get("object") != WEBHOOK_OBJECT:
        raise WebhookPayloadError(f"object: expected {WEBHOOK_OBJECT!r}, got {document.get('object')!r}")
    entries = _list(document, "entry", "")
    return WebhookPayload(entries=tuple(_entry(item, f"entry[{i}]") for i, item in enumerate(entries)))


def parse_document(document: Any) -> WebhookPayload:
    """Parse a body already decoded from JSON (None: it was not JSON), so a request decodes it once."""
    if document is None:
        raise WebhookPayloadError("body is not valid JSON")
    if not isinstance(document, dict):
        raise WebhookPayloadError(f"body: expected a JSON object, got {type(document).__name__}")
    return parse_webhook(document)


def change_fields(document: Any) -> list[str] | None:
    """The `field`s a decoded body's changes name, sorted; None when it is not shaped like a webhook at all.

    The intake's quick look (a tenth of the strict parse's cost): the drain parses every row strictly,
    and a row that fails there is marked failed with the reason.
    """
    if not isinstance(document, dict) or document.get("object") != WEBHOOK_OBJECT:
        return None
    entries = document.get("entry")
    if not isinstance(entries, list) or not entries:
        return None
    fields = set()
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            return None
        for change in changes:
            field = change.get("field") if isinstance(change, dict) else None
            if not isinstance(field, str) or not field:
                return None
            fields.add(field)
    return sorted(fields)


def phone_number_ids(payload: bytes | str | Mapping[str, Any] | WebhookPayload) -> set[str]:
    """The `metadata.phone_number_id`s a payload names, to pick the app secret before verifying it.

    Raw bodies are walked leniently (an odd entry is skipped, not fatal): the signature check
    decides whether the body is trusted, and a strict parse comes after it.
    """
    if isinstance(payload, WebhookPayload):
        return {c.metadata.phone_number_id for c in payload.changes if isinstance(c, MessagesChange)}
    found = set()
    for value in _lenient_values(_document(payload)):
        metadata = value.get("metadata")
        number = metadata.get("phone_number_id") if isinstance(metadata, Mapping) else None
        if isinstance(number, (str, int)) and not isinstance(number, bool) and str(number):
            found.add(str(number))
    return found


def waba_ids(payload: bytes | str | Mapping[str, Any] | WebhookPayload) -> set[str]:
    """The WABA ids (`entry[].id`) a payload names; the only key for fields without a phone_number_id."""
    if isinstance(payload, WebhookPayload):
        return {entry.waba_id for entry in payload.entries}
    entries = _document(payload).get("entry")
    return {
        str(entry["id"])
        for entry in (entries if isinstance(entries, list) else [])
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), (str, int)) and str(entry["id"])
    }


# -- parsing ------------------------------------------------------------------------------


def _document(body: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    if isinstance(body, (bytes, bytearray, str)):
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise WebhookPayloadError(f"body is not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise WebhookPayloadError(f"body: expected a JSON object, got {type(document).__name__}")
        return document
    raise TypeError(f"cannot parse a webhook from {type(body).__name__}")


def _lenient_values(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    entries = document.get("entry")
    for entry in entries if isinstance(entries, list) else ():
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        for change in changes if isinstance(changes, list) else ():
            value = change.get("value") if isinstance(change, Mapping) else None
            if isinstance(value, Mapping):
                yield value


def _at(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"{path}: expected an object, got {type(value).__name__}")
    return value


def _list(obj: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> list[Any]:
    value = obj.get(key)
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise WebhookPayloadError(f"{_at(path, key)}: expected a list, got {type(value).__name__}")
    return value


def _id(obj: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise WebhookPayloadError(f"{_at(path, key)}: missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise WebhookPayloadError(f"{_at(path, key)}: expected a string, got {type(value).__name__}")
    return str(value)


def _text(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _timestamp(obj: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> datetime | None:
    value = obj.get(key)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not (isinstance(value, int) or _is_digits(value)):
        raise WebhookPayloadError(f"{_at(path, key)}: expected Unix seconds, got {value!r}")
    try:
        return datetime.fromtimestamp(int(value), tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise WebhookPayloadError(f"{_at(path, key)}: timestamp out of range: {value!r}") from exc


def _entry(item: Any, path: str) -> Entry:
    entry = _mapping(item, path)
    waba_id = _id(entry, "id", path)
    changes = _list(entry, "changes", path)
    time = _timestamp(entry, "time", path, required=False)
    return Entry(
        waba_id=waba_id,
        time=time,
        changes=tuple(_change(change, waba_id, f"{path}.changes[{i}]", time) for i, change in enumerate(changes)),
    )


def _change(item: Any, waba_id: str, path: str, time: datetime | None) -> Change:
    change = _mapping(item, path)
    field = change.get("field")
    if not isinstance(field, str) or not field:
        raise WebhookPayloadError(f"{path}.field: missing")
    value = _mapping(change.get("value"), f"{path}.value")
    if field != MESSAGES_FIELD:
        return FieldChange(waba_id=waba_id, field=field, value=value, time=time)
    path = f"{path}.value"
    metadata = _mapping(value.get("metadata"), f"{path}.metadata")
    return MessagesChange(
        waba_id=waba_id,
        field=field,
        value=value,
        metadata=Metadata(
            phone_number_id=_id(metadata, "phone_number_id", f"{path}.metadata"),
            display_phone_number=_id(metadata, "display_phone_number", f"{path}.metadata", required=False),
        ),
        contacts=tuple(
            _contact(c, f"{path}.contacts[{i}]") for i, c in enumerate(_list(value, "contacts", path, required=False))
        ),
        messages=tuple(
            _message(m, f"{path}.messages[{i}]") for i, m in enumerate(_list(value, "messages", path, required=False))
        ),
        statuses=tuple(
            _status(s, f"{path}.statuses[{i}]") for i, s in enumerate(_list(value, "statuses", path, required=False))
        ),
        errors=_errors(value, path),
    )


def _contact(item: Any, path: str) -> Contact:
    contact = _mapping(item, path)
    profile = contact.get("profile")
    return Contact(
        wa_id=_id(contact, "wa_id", path, required=False),
        profile_name=_text(profile, "name") if isinstance(profile, Mapping) else None,
        user_id=_id(contact, "user_id", path, required=False),
    )


def _message(item: Any, path: str) -> InboundMessage:
    message = _mapping(item, path)
    message_type = message.get("type")
    if not isinstance(message_type, str) or not message_type:
        raise WebhookPayloadError(f"{path}.type: missing")
    from_wa_id = _id(message, "from", path, required=False)
    from_user_id = _id(message, "from_user_id", path, required=False)
    if from_wa_id is None and from_user_id is None:
        raise WebhookPayloadError(f"{path}: neither `from` nor `from_user_id`")
    context = message.get("context")
    referral = message.get("referral")
    content = message.get(message_type)
    return InboundMessage(
        wamid=_id(message, "id", path),
        from_wa_id=from_wa_id,
        from_user_id=from_user_id,
        timestamp=_timestamp(message, "timestamp", path),
        type=message_type,
        content={} if content is None else content,
        context=_context(context, f"{path}.context") if context is not None else None,
        referral=_mapping(referral, f"{path}.referral") if referral is not None else None,
        errors=_errors(message, path),
        raw=message,
    )


def _context(item: Any, path: str) -> MessageContext:
    context = _mapping(item, path)
    product = context.get("referred_product")
    return MessageContext(
        quoted_message_id=_id(context, "id", path, required=False),
        quoted_from=_id(context, "from", path, required=False),
        forwarded=context.get("forwarded") is True,
        frequently_forwarded=context.get("frequently_forwarded") is True,
        referred_product=_mapping(product, f"{path}.referred_product") if product is not None else None,
    )


def _status(item: Any, path: str) -> MessageStatus:
    status = _mapping(item, path)
    value = status.get("status")
    if not isinstance(value, str) or not value:
        raise WebhookPayloadError(f"{path}.status: missing")
    conversation = status.get("conversation")
    pricing = status.get("pricing")
    callback = status.get("biz_opaque_callback_data")
    return MessageStatus(
        wamid=_id(status, "id", path),
        status=value,
        timestamp=_timestamp(status, "timestamp", path),
        recipient_id=_id(status, "recipient_id", path, required=False),
        recipient_user_id=_id(status, "recipient_user_id", path, required=False),
        biz_opaque_callback_data=callback if isinstance(callback, str) else None,
        conversation=_conversation(conversation, f"{path}.conversation") if conversation is not None else None,
        pricing=_pricing(pricing, f"{path}.pricing") if pricing is not None else None,
        errors=_errors(status, path),
        raw=status,
    )


def _conversation(item: Any, path: str) -> Conversation:
    conversation = _mapping(item, path)
    origin = conversation.get("origin")
    return Conversation(
        id=_id(conversation, "id", path, required=False),
        origin_type=_text(origin, "type") if isinstance(origin, Mapping) else None,
        expires_at=_timestamp(conversation, "expiration_timestamp", path, required=False),
    )


def _pricing(item: Any, path: str) -> Pricing:
    pricing = _mapping(item, path)
    billable = pricing.get("billable")
    return Pricing(
        billable=billable if isinstance(billable, bool) else None,
        pricing_model=_text(pricing, "pricing_model"),
        category=_text(pricing, "category"),
        type=_text(pricing, "type"),
    )


def _errors(obj: Mapping[str, Any], path: str) -> tuple[WebhookError, ...]:
    items = _list(obj, "errors", path, required=False)
    return tuple(_error(item, f"{path}.errors[{i}]") for i, item in enumerate(items))


def _error(item: Any, path: str) -> WebhookError:
    error = _mapping(item, path)
    code = error.get("code")
    error_data = error.get("error_data")
    details = error_data.get("details") if isinstance(error_data, Mapping) else error_data
    return WebhookError(
        code=code if isinstance(code, int) and not isinstance(code, bool) else _digits(code),
        title=_text(error, "title"),
        message=_text(error, "message"),
        details=details if isinstance(details, str) else None,
        href=_text(error, "href"),
    )


def _is_digits(value: Any) -> bool:
    return isinstance(value, str) and value.isascii() and value.isdigit()


def _digits(value: Any) -> int | None:
    return int(value) if _is_digits(value) else None
