"""Webhook bodies as the reference (§6) shows them, parsed into typed values."""

import json
from datetime import UTC, datetime

import pytest

from shared.whatsapp.errors import ErrorAction
from shared.whatsapp.payloads import (
    Contact,
    FieldChange,
    Metadata,
    MessagesChange,
    WebhookPayloadError,
    parse_webhook,
    phone_number_ids,
    waba_ids,
)

WABA_ID = "102290129340398"
PHONE_ID = "106540352242922"
TS = "1789123456"
TS_AT = datetime(2026, 9, 11, 10, 44, 16, tzinfo=UTC)


def messages_value(*, messages=(), statuses=(), contacts=None, errors=None, phone_id=PHONE_ID):
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": phone_id},
    }
    if contacts is not None:
        value["contacts"] = contacts
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    if errors is not None:
        value["errors"] = errors
    return value


def webhook(*values, field="messages", waba_id=WABA_ID):
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": [{"field": field, "value": value} for value in values]}],
    }


def inbound(message_type, content=None, **extra):
    message = {"from": "16505551234", "id": "wamid.IN1", "timestamp": TS, "type": message_type, **extra}
    if content is not None:
        message[message_type] = content
    return message


def only_message(message):
    payload = parse_webhook(webhook(messages_value(messages=[message])))
    (change,) = payload.changes
    (parsed,) = change.messages
    return parsed


def only_status(status):
    (change,) = parse_webhook(webhook(messages_value(statuses=[status]))).changes
    (parsed,) = change.statuses
    return parsed


def test_a_text_message_with_its_contact_and_metadata_from_raw_bytes():
    body = webhook(
        messages_value(
            contacts=[{"profile": {"name": "Sheena"}, "wa_id": "16505551234", "user_id": "US.1349120865"}],
            messages=[inbound("text", {"body": "Ol\u00e1"})],
        )
    )
    payload = parse_webhook(json.dumps(body).encode())  # Meta's \\uXXXX escapes, as received
    (entry,) = payload.entries
    (change,) = entry.changes
    assert isinstance(change, MessagesChange)
    assert (entry.waba_id, change.waba_id, change.field) == (WABA_ID, WABA_ID, "messages")
    assert change.metadata == Metadata(phone_number_id=PHONE_ID, display_phone_number="15550783881")
    assert change.contacts == (Contact(wa_id="16505551234", profile_name="Sheena", user_id="US.1349120865"),)
    (message,) = change.messages
    assert (message.wamid, message.from_wa_id, message.type) == ("wamid.IN1", "16505551234", "text")
    assert message.content == {"body": "Olá"}
    assert message.timestamp == TS_AT and message.timestamp.tzinfo is UTC
    assert message.context is None and message.referral is None and message.errors == ()


@pytest.mark.parametrize(
    ("message_type", "content"),
    [
        ("image", {"id": "1", "mime_type": "image/jpeg", "sha256": "h", "caption": "look", "url": "https://l/1"}),
        ("video", {"id": "2", "mime_type": "video/mp4", "sha256": "h"}),
        ("document", {"id": "3", "mime_type": "application/pdf", "sha256": "h", "filename": "a.pdf"}),
        ("audio", {"id": "4", "mime_type": "audio/ogg; codecs=opus", "sha256": "h", "voice": True}),
        ("sticker", {"id": "5", "mime_type": "image/webp", "sha256": "h", "animated": False}),
        ("location", {"latitude": 37.48, "longitude": -122.14, "name": "HQ", "address": "1 Hacker Way"}),
        ("interactive", {"type": "button_reply", "button_reply": {"id": "resched_yes", "title": "Yes"}}),
        ("interactive", {"type": "list_reply", "list_reply": {"id": "mon_9", "title": "09:00", "description": "AM"}}),
        (
            "interactive",
            {"type": "nfm_reply", "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"flow_token":"t"}'}},
        ),
        ("button", {"payload": "STOP_PROMOS", "text": "Stop promotions"}),
        ("reaction", {"message_id": "wamid.OURS", "emoji": "\u2764\ufe0f"}),
        (
            "order",
            {
                "catalog_id": "c1",
                "text": "pls",
                "product_items": [{"product_retailer_id": "sku", "quantity": 2, "item_price": 9.5, "currency": "EUR"}],
            },
        ),
        ("system", {"type": "user_changed_number", "body": "changed", "wa_id": "16505550000"}),
        (
            "system",
            {
                "type": "customer_identity_changed",
                "identity": {"acknowledged": True, "created_timestamp": 1, "hash": "x"},
            },
        ),
    ],
)
def test_every_inbound_type_keeps_its_content(message_type, content):
    message = only_message(inbound(message_type, content))
    assert message.type == message_type
    assert message.content == content


def test_contacts_messages_keep_their_list_of_cards():
    cards = [
        {
            "name": {"formatted_name": "Ana Diaz", "first_name": "Ana"},
            "phones": [{"phone": "+34611223344", "wa_id": "34611223344", "type": "CELL"}],
            "emails": [{"email": "ana@example.com", "type": "WORK"}],
            "birthday": "1990-01-01",
        }
    ]
    assert only_message(inbound("contacts", cards)).content == cards


def test_a_removed_reaction_has_no_emoji():
    message = only_message(inbound("reaction", {"message_id": "wamid.OURS"}))
    assert message.content == {"message_id": "wamid.OURS"}


def test_an_unsupported_message_carries_its_error_and_classification():
    message = only_message(
        inbound(
            "unsupported",
            {"type": "poll"},
            errors=[
                {
                    "code": 131051,
                    "title": "Message type unknown",
                    "message": "Message type unknown",
                    "error_data": {"details": "Message type is currently not supported."},
                    "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
                }
            ],
        )
    )
    assert message.content == {"type": "poll"}
    (error,) = message.errors
    assert (error.code, error.title, error.details) == (
        131051, "Message type unknown", "Message type is currently not supported.",
    )  # fmt: skip
    assert error.href.startswith("https://developers.facebook.com/")
    assert error.classification.action is ErrorAction.PERMANENT


def test_a_type_without_its_object_gets_empty_content():
    assert only_message(inbound("unknown")).content == {}


def test_reply_context_and_ad_referral():
    referral = {
        "source_url": "https://fb.me/ad",
        "source_id": "120",
        "source_type": "ad",
        "headline": "Sale",
        "body": "50% off",
        "media_type": "image",
        "image_url": "https://cdn/x.jpg",
        "ctwa_clid": "ARAkL",
    }
    message = only_message(
        inbound("text", {"body": "yes"}, context={"from": "15550783881", "id": "wamid.QUOTED"}, referral=referral)
    )
    assert message.context.quoted_message_id == "wamid.QUOTED"
    assert message.context.quoted_from == "15550783881"
    assert not message.context.forwarded and not message.context.frequently_forwarded
    assert message.referral == referral


def test_forwarded_and_product_enquiry_contexts():
    forwarded = only_message(inbound("text", {"body": "fw"}, context={"forwarded": True})).context
    assert forwarded.forwarded and not forwarded.frequently_forwarded and forwarded.quoted_message_id is None
    frequent = only_message(inbound("text", {"body": "fw"}, context={"frequently_forwarded": True})).context
    assert frequent.frequently_forwarded
    product = {"catalog_id": "c1", "product_retailer_id": "sku"}
    enquiry = only_message(
        inbound("text", {"body": "?"}, context={"from": "15550783881", "id": "wamid.P", "referred_product": product})
    ).context
    assert enquiry.referred_product == product


def test_a_username_user_may_come_without_a_phone_number():
    message = only_message(
        {"from_user_id": "US.1349120865", "id": "wamid.B", "timestamp": TS, "type": "text", "text": {"body": "hi"}}
    )
    assert (message.from_wa_id, message.from_user_id) == (None, "US.1349120865")


def test_a_sent_status_with_conversation_and_pricing():
    status = only_status(
        {
            "id": "wamid.OURS",
            "status": "sent",
            "timestamp": TS,
            "recipient_id": "16505551234",
            "recipient_user_id": "US.1349120865",
            "biz_opaque_callback_data": "message:8b1c",
            "conversation": {"id": "c1f3", "expiration_timestamp": "1789209856", "origin": {"type": "marketing"}},
            "pricing": {"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular"},
        }
    )
    assert (status.wamid, status.status, status.timestamp) == ("wamid.OURS", "sent", TS_AT)
    assert (status.recipient_id, status.recipient_user_id) == ("16505551234", "US.1349120865")
    assert status.biz_opaque_callback_data == "message:8b1c"
    assert status.conversation.id == "c1f3" and status.conversation.origin_type == "marketing"
    assert status.conversation.expires_at == datetime(2026, 9, 12, 10, 44, 16, tzinfo=UTC)
    assert (status.pricing.billable, status.pricing.pricing_model) == (True, "PMP")
    assert (status.pricing.category, status.pricing.type) == ("marketing", "regular")


@pytest.mark.parametrize("value", ["delivered", "read", "played"])
def test_statuses_without_pricing_objects(value):
    status = only_status({"id": "wamid.OURS", "status": value, "timestamp": TS, "recipient_id": "16505551234"})
    assert status.status == value
    assert status.conversation is None and status.pricing is None and status.biz_opaque_callback_data is None


def test_a_free_service_status_and_a_conversation_without_expiry():
    status = only_status(
        {
            "id": "wamid.OURS",
            "status": "delivered",
            "timestamp": TS,
            "recipient_id": "1",
            "conversation": {"id": "c2", "origin": {"type": "service"}},
            "pricing": {"pricing_model": "PMP", "category": "service", "type": "free_customer_service"},
        }
    )
    assert status.conversation.expires_at is None
    assert status.pricing.billable is None and status.pricing.type == "free_customer_service"


def test_a_legacy_pricing_without_type_and_a_conversation_without_origin():
    status = only_status(
        {
            "id": "wamid.OURS",
            "status": "sent",
            "timestamp": TS,
            "recipient_id": "1",
            "conversation": {"id": "c3"},
            "pricing": {"billable": False, "pricing_model": "CBP", "category": "service"},
        }
    )
    conversation = status.conversation
    assert (conversation.id, conversation.origin_type, conversation.expires_at) == ("c3", None, None)
    assert (status.pricing.billable, status.pricing.pricing_model, status.pricing.type) == (False, "CBP", None)


def test_a_failed_status_carries_classified_errors():
    status = only_status(
        {
            "id": "wamid.OURS",
            "status": "failed",
            "timestamp": TS,
            "recipient_id": "16505551234",
            "errors": [
                {
                    "code": 131047,
                    "title": "Re-engagement message",
                    "message": "Re-engagement message",
                    "error_data": {"details": "Message failed to send because more than 24 hours have passed."},
                }
            ],
        }
    )
    (error,) = status.errors
    assert error.code == 131047
    assert error.details.startswith("Message failed to send")
    assert error.classification.action is ErrorAction.NEEDS_TEMPLATE


def test_system_errors_on_the_value():
    body = webhook(messages_value(errors=[{"code": 131000, "title": "Something went wrong"}]))
    (change,) = parse_webhook(body).changes
    assert change.messages == () and change.statuses == ()
    (error,) = change.errors
    assert error.code == 131000 and error.classification.retryable


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (
            "message_template_status_update",
            {
                "event": "REJECTED",
                "message_template_id": 594425479261596,
                "message_template_name": "order_update",
                "message_template_language": "en_US",
                "reason": "INCORRECT_CATEGORY",
                "rejection_info": {"reason": "r", "recommendation": "x"},
            },
        ),
        (
            "message_template_quality_update",
            {
                "previous_quality_score": "GREEN",
                "new_quality_score": "YELLOW",
                "message_template_id": 1,
                "message_template_name": "order_update",
                "message_template_language": "en_US",
            },
        ),
        (
            "template_category_update",
            {
                "message_template_id": 1,
                "message_template_name": "order_update",
                "message_template_language": "en_US",
                "previous_category": "UTILITY",
                "new_category": "MARKETING",
            },
        ),
        (
            "phone_number_quality_update",
            {"display_phone_number": "15550783881", "event": "FLAGGED", "current_limit": "TIER_10K"},
        ),
        (
            "account_update",
            {
                "event": "ACCOUNT_RESTRICTION",
                "restriction_info": [{"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION", "expiration": 1}],
            },
        ),
        ("business_capability_update", {"max_daily_conversations_per_business": 2000}),
    ],
)
def test_other_fields_keep_their_value_and_waba_id(field, value):
    body = webhook(value, field=field)
    body["entry"][0]["time"] = 1789123456
    (entry,) = parse_webhook(body).entries
    (change,) = entry.changes
    assert change == FieldChange(waba_id=WABA_ID, field=field, value=value, time=TS_AT)
    assert entry.time == TS_AT


def test_every_entry_and_change_of_a_batched_post_is_kept():
    text_message = inbound("text", {"body": "a"})
    read_status = {"id": "wamid.S", "status": "read", "timestamp": TS, "recipient_id": "1"}
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "W1",
                "changes": [
                    {"field": "messages", "value": messages_value(phone_id="P1", messages=[text_message])},
                    {"field": "messages", "value": messages_value(phone_id="P2", statuses=[read_status])},
                ],
            },
            {"id": "W2", "changes": [{"field": "account_update", "value": {"event": "PARTNER_ADDED"}}]},
        ],
    }
    payload = parse_webhook(body)
    assert [(c.waba_id, c.field) for c in payload.changes] == [
        ("W1", "messages"),
        ("W1", "messages"),
        ("W2", "account_update"),
    ]
    assert phone_number_ids(payload) == phone_number_ids(json.dumps(body).encode()) == {"P1", "P2"}
    assert waba_ids(payload) == waba_ids(body) == {"W1", "W2"}


def test_phone_number_ids_reads_a_body_the_strict_parser_rejects():
    body = webhook(messages_value(phone_id="P9", messages=[{"id": "wamid.X", "type": "text"}]))  # no timestamp
    body["entry"].append("garbage")
    assert phone_number_ids(json.dumps(body).encode()) == {"P9"}
    with pytest.raises(WebhookPayloadError):
        parse_webhook(body)


def test_phone_number_ids_of_a_field_without_one_is_empty():
    quality = webhook({"display_phone_number": "1555", "event": "FLAGGED"}, field="phone_number_quality_update")
    assert phone_number_ids(quality) == set()
    with pytest.raises(WebhookPayloadError):
        phone_number_ids(b"not json")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"object":"page","entry":[]}', "object"),
        (b'{"object":"whatsapp_business_account"}', "entry"),
        (b'{"object":"whatsapp_business_account","entry":[{"changes":[]}]}', "entry[0].id"),
        (b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{}}]}]}', "changes[0].field"),
        (
            b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":'
            b'[{"field":"messages","value":{"metadata":{}}}]}]}',
            "entry[0].changes[0].value.metadata.phone_number_id",
        ),
    ],
)
def test_malformed_envelopes_are_rejected_with_the_path(body, names):
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(body)
    assert names in str(caught.value)


@pytest.mark.parametrize(
    ("message", "names"),
    [
        ({"from": "1", "timestamp": TS, "type": "text"}, "messages[0].id"),
        ({"from": "1", "id": "wamid.X", "type": "text"}, "messages[0].timestamp"),
        ({"from": "1", "id": "wamid.X", "timestamp": "yesterday", "type": "text"}, "messages[0].timestamp"),
        ({"from": "1", "id": "wamid.X", "timestamp": TS}, "messages[0].type"),
        ({"id": "wamid.X", "timestamp": TS, "type": "text"}, "messages[0]"),
        ({"from": "1", "id": "wamid.X", "timestamp": TS, "type": "text", "context": "wamid.Q"}, "messages[0].context"),
    ],
)
def test_malformed_messages_are_rejected_with_the_path(message, names):
    with pytest.raises(WebhookPayloadError) as caught:
        parse_webhook(webhook(messages_value(messages=[message])))
    assert names in str(caught.value)


def test_a_status_without_its_status_is_rejected():
    with pytest.raises(WebhookPayloadError, match=r"statuses\[0\]\.status"):
        parse_webhook(webhook(messages_value(statuses=[{"id": "wamid.S", "timestamp": TS}])))


def test_parsing_does_not_accept_decoded_text_of_the_wrong_kind():
    with pytest.raises(TypeError):
        parse_webhook(42)
