"""Simulated customers: each inbound type in Meta's envelope, batching, and what an inbound message opens."""

import base64

import pytest

from tests.sandbox.helpers import (
    AUTH,
    CUSTOMER,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    VERSION,
    WABA_ID,
    customer_writes,
    drain,
    send,
    sign,
    text,
)

INBOUND_URL = f"/_sandbox/numbers/{PHONE_NUMBER_ID}/inbound"
SECOND = {"phone_number_id": "200000000000002", "waba_id": "300000000000003", "display_phone_number": "15550009999",
          "access_token": "t2", "app_secret": "app-secret-1"}


def only_message(result: dict) -> dict:
    [entry] = result["webhook"]["entry"]
    [change] = entry["changes"]
    [message] = change["value"]["messages"]
    return message


@pytest.mark.parametrize(
    "spec, expected",
    [
        pytest.param({"type": "text", "text": {"body": "Hi"}}, {"text": {"body": "Hi"}}, id="text"),
        pytest.param({"type": "interactive", "interactive": {"type": "button_reply",
                                                               "button_reply": {"id": "resched_yes", "title": "Yes"}}},
                     {"interactive": {"type": "button_reply", "button_reply": {"id": "resched_yes", "title": "Yes"}}},
                     id="button-reply"),
        pytest.param({"type": "interactive", "interactive": {"type": "list_reply", "list_reply": {
            "id": "mon_9", "title": "09:00", "description": "Morning"}}},
            {"interactive": {"type": "list_reply", "list_reply": {"id": "mon_9", "title": "09:00",
                                                                  "description": "Morning"}}}, id="list-reply"),
        pytest.param({"type": "button", "button": {"payload": "STOP_PROMOS", "text": "Stop promotions"},
                      "context": {"id": "wamid.TEMPLATE"}},
                     {"button": {"payload": "STOP_PROMOS", "text": "Stop promotions"},
                      "context": {"id": "wamid.TEMPLATE", "from": DISPLAY_NUMBER}}, id="template-quick-reply"),
        pytest.param({"type": "location", "location": {"latitude": 37.48, "longitude": -122.14, "name": "HQ"}},
                     {"location": {"latitude": 37.48, "longitude": -122.14, "name": "HQ"}}, id="location"),
        pytest.param({"type": "contacts", "contacts": [{"name": {"formatted_name": "Ana Diaz"},
                                                         "phones": [{"phone": "+34611223344", "type": "CELL"}]}]},
                     {"contacts": [{"name": {"formatted_name": "Ana Diaz"},
                                    "phones": [{"phone": "+34611223344", "type": "CELL"}]}]}, id="contacts"),
        pytest.param({"type": "reaction", "reaction": {"message_id": "wamid.OURS", "emoji": "\u2764\ufe0f"}},
                     {"reaction": {"message_id": "wamid.OURS", "emoji": "\u2764\ufe0f"}}, id="reaction"),
        pytest.param({"type": "text", "text": {"body": "Same here"}, "context": {"id": "wamid.QUOTED"}},
                     {"text": {"body": "Same here"}, "context": {"id": "wamid.QUOTED", "from": DISPLAY_NUMBER}},
                     id="reply-with-context"),
        pytest.param({"type": "text", "text": {"body": "fwd"}, "context": {"forwarded": True}},
                     {"text": {"body": "fwd"}, "context": {"forwarded": True}}, id="forwarded"),
    ],
)
def test_inbound_types_arrive_in_meta_s_envelope(graph, spec, expected):
    result = customer_writes(graph, name="Sheena", **spec)
    payload = result["webhook"]
    assert payload["object"] == "whatsapp_business_account"
    [entry] = payload["entry"]
    assert entry["id"] == WABA_ID and "time" not in entry
    [change] = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"] == {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID}
    assert value["contacts"] == [{"profile": {"name": "Sheena"}, "wa_id": CUSTOMER}]
    [message] = value["messages"]
    assert message["from"] == CUSTOMER and message["type"] == spec["type"]
    assert message["id"] == result["message_ids"][0] and message["id"].startswith("wamid.")
    assert isinstance(message["timestamp"], str) and message["timestamp"].isdigit()
    assert {k: v for k, v in message.items() if k not in ("from", "id", "timestamp", "type")} == expected


def test_an_inbound_image_can_be_downloaded_by_the_platform(graph):
    picture = b"\x89PNG\r\n\x1a\nsandbox"
    message = only_message(customer_writes(graph, type="image", image={
        "mime_type": "image/png", "caption": "my plant", "data_base64": base64.b64encode(picture).decode()}))
    image = message["image"]
    assert image["mime_type"] == "image/png" and image["caption"] == "my plant" and len(image["sha256"]) == 64
    described = graph.get(f"/{VERSION}/{image['id']}", headers=AUTH).get_json()
    assert described["sha256"] == image["sha256"] and described["file_size"] == len(picture)
    assert graph.get(described["url"], headers=AUTH).data == picture


def test_voice_notes_and_documents_keep_their_flags(graph):
    audio = only_message(customer_writes(graph, type="audio", audio={"voice": True}))["audio"]
    assert audio["voice"] is True and audio["mime_type"] == "audio/ogg"
    document = only_message(customer_writes(graph, type="document", document={
        "mime_type": "application/pdf", "filename": "invoice.pdf"}))["document"]
    assert document["filename"] == "invoice.pdf"


def test_click_to_whatsapp_referral_is_filled_in(graph):
    message = only_message(customer_writes(graph, referral={"headline": "Spring sale", "source_id": "ad-42"}))
    referral = message["referral"]
    assert referral["headline"] == "Spring sale" and referral["source_id"] == "ad-42"
    assert referral["source_type"] == "ad" and referral["ctwa_clid"]


def test_unsupported_messages_carry_131051(graph):
    message = only_message(customer_writes(graph, type="unsupported", unsupported={"type": "poll"}))
    assert message["errors"][0]["code"] == 131051 and message["unsupported"] == {"type": "poll"}


def test_several_messages_and_statuses_share_one_post(with_receiver, receiver):
    graph = with_receiver
    customer_writes(graph)
    wamid = send(graph, text()).get_json()["messages"][0]["id"]
    drain(graph)
    receiver.posts.clear()

    result = graph.post(INBOUND_URL, json={
        "from": CUSTOMER, "name": "Ana",
        "messages": [{"type": "text", "text": {"body": "one"}}, {"type": "text", "text": {"body": "two"}},
                     {"from": "447700900123", "name": "Bob", "type": "text", "text": {"body": "three"}}],
        "statuses": [{"id": wamid, "status": "read"}]}).get_json()
    drain(graph)
    [post] = receiver.posts
    assert post["headers"]["X-Hub-Signature-256"] == sign(post["raw"])
    value = receiver.payloads()[0]["entry"][0]["changes"][0]["value"]
    assert [m["text"]["body"] for m in value["messages"]] == ["one", "two", "three"]
    assert [m["id"] for m in value["messages"]] == result["message_ids"]
    assert value["contacts"] == [{"profile": {"name": "Ana"}, "wa_id": CUSTOMER},
                                 {"profile": {"name": "Bob"}, "wa_id": "447700900123"}]
    assert value["statuses"] == [{"id": wamid, "status": "read", "timestamp": value["statuses"][0]["timestamp"],
                                  "recipient_id": CUSTOMER}]
    assert send(graph, text(to="447700900123")).status_code == 200  # Bob's window is open now


def test_one_post_can_span_numbers_and_wabas(graph):
    graph.post("/_sandbox/numbers", json=SECOND)
    result = graph.post("/_sandbox/inbound", json={"items": [
        {"phone_number_id": PHONE_NUMBER_ID, "from": CUSTOMER, "type": "text", "text": {"body": "to first"}},
        {"phone_number_id": SECOND["phone_number_id"], "from": CUSTOMER, "type": "text", "text": {"body": "to second"}},
    ]}).get_json()
    entries = result["webhook"]["entry"]
    assert [entry["id"] for entry in entries] == [WABA_ID, SECOND["waba_id"]]
    assert [entry["changes"][0]["value"]["metadata"]["phone_number_id"] for entry in entries] == [
        PHONE_NUMBER_ID, SECOND["phone_number_id"]]
    assert len(result["message_ids"]) == 2
    second_auth = {"Authorization": "Bearer t2"}
    assert send(graph, text(), number=SECOND["phone_number_id"], headers=second_auth).status_code == 200


def test_a_batch_must_belong_to_one_app(graph):
    graph.post("/_sandbox/numbers", json={**SECOND, "app_secret": "another-app"})
    response = graph.post("/_sandbox/inbound", json={"items": [
        {"phone_number_id": PHONE_NUMBER_ID, "from": CUSTOMER, "text": "a"},
        {"phone_number_id": SECOND["phone_number_id"], "from": CUSTOMER, "text": "b"}]})
    assert response.status_code == 400 and "app_secret" in response.get_json()["error"]


@pytest.mark.parametrize(
    "spec, fragment",
    [
        pytest.param({"type": "text", "text": {"body": "no sender"}}, "from", id="no-from"),
        pytest.param({"from": CUSTOMER, "type": "hologram"}, "type", id="unknown-type"),
        pytest.param({"from": CUSTOMER, "type": "interactive", "interactive": {"type": "button_reply"}}, "button_reply",
                     id="incomplete-reply"),
        pytest.param({"from": CUSTOMER, "statuses": [{"id": "wamid.NOT_OURS", "status": "read"}]}, "not a message",
                     id="status-for-unknown-message"),
    ],
)
def test_bad_simulations_are_400(graph, spec, fragment):
    response = graph.post(INBOUND_URL, json=spec)
    assert response.status_code == 400 and fragment in response.get_json()["error"]
    assert graph.post("/_sandbox/numbers/000/inbound", json={"from": CUSTOMER, "text": "x"}).status_code == 404
