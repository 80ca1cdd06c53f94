"""POST /{version}/{phone_number_id}/messages: answers, validation (100), auth (190), the window (131047)
and recipient = sender (131021), mark-as-read, async failures (131026, 131053)."""

import pytest

from tests.sandbox.helpers import (
    AUTH,
    CUSTOMER,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    VERSION,
    customer_writes,
    error_of,
    send,
    text,
)

OTHER_NUMBER = {
    "phone_number_id": "200000000000002",
    "waba_id": "300000000000003",
    "display_phone_number": "15550009999",
    "access_token": "other-token",
    "app_secret": "other-secret",
}


def test_an_accepted_message_gets_meta_s_exact_answer_and_is_recorded(graph):
    customer_writes(graph)
    response = send(graph, text(to="+1 650-555-1234", biz_opaque_callback_data="campaign:42;row:9"))
    assert response.status_code == 200
    body = response.get_json()
    assert list(body) == ["messaging_product", "contacts", "messages"]
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "+1 650-555-1234", "wa_id": CUSTOMER}]
    [message] = body["messages"]
    assert message["id"].startswith("wamid.") and message["message_status"] == "accepted"

    [recorded] = graph.get("/_sandbox/messages").get_json()["data"]
    assert recorded["id"] == message["id"]
    assert recorded["wa_id"] == CUSTOMER and recorded["type"] == "text"
    assert recorded["biz_opaque_callback_data"] == "campaign:42;row:9"


def test_wa_id_may_differ_from_the_input(graph):
    graph.patch(f"/_sandbox/numbers/{PHONE_NUMBER_ID}", json={"wa_id_map": {"5511987654321": "551187654321"}})
    customer_writes(graph, wa_id="551187654321")
    body = send(graph, text(to="+5511987654321")).get_json()
    assert body["contacts"] == [{"input": "+5511987654321", "wa_id": "551187654321"}]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"type": "image", "image": {"link": "https://cdn.example/p.jpg", "caption": "Plant"}},
                     id="image-link"),
        pytest.param({"type": "video", "video": {"link": "https://cdn.example/v.mp4"}}, id="video-link"),
        pytest.param({"type": "audio", "audio": {"link": "https://cdn.example/a.ogg"}}, id="audio-link"),
        pytest.param({"type": "document", "document": {"link": "https://cdn.example/d.pdf", "filename": "d.pdf"}},
                     id="document-link"),
        pytest.param({"type": "sticker", "sticker": {"link": "https://cdn.example/s.webp"}}, id="sticker-link"),
        pytest.param({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "\U0001f44d"}}, id="reaction"),
        pytest.param({"type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": ""}}, id="reaction-removed"),
        pytest.param({"type": "location", "location": {"latitude": 37.48, "longitude": -122.14, "name": "HQ"}},
                     id="location"),
        pytest.param({"type": "contacts", "contacts": [{"name": {"formatted_name": "Ana Diaz", "first_name": "Ana"},
                                                          "phones": [{"phone": "+34611223344", "type": "CELL"}]}]},
                     id="contacts"),
        pytest.param({"type": "interactive", "interactive": {
            "type": "button", "header": {"type": "text", "text": "Delivery"}, "body": {"text": "Reschedule?"},
            "footer": {"text": "Acme"}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}}, id="buttons"),
        pytest.param({"type": "interactive", "interactive": {
            "type": "list", "body": {"text": "Pick a slot"}, "action": {"button": "Slots", "sections": [
                {"title": "Mon", "rows": [{"id": "mon_9", "title": "09:00", "description": "Morning"}]},
                {"title": "Tue", "rows": [{"id": "tue_9", "title": "09:00"}]}]}}}, id="list"),
        pytest.param({"type": "text", "text": {"body": "Quoting you"}, "context": {"message_id": "wamid.PREV"}},
                     id="reply-with-context"),
    ],
)
def test_each_free_form_type_is_accepted_inside_the_window(graph, payload):
    customer_writes(graph)
    response = send(graph, {"to": CUSTOMER, **payload})
    assert response.status_code == 200, response.get_json()
    [recorded] = graph.get("/_sandbox/messages").get_json()["data"]
    assert recorded["type"] == payload["type"] and recorded["failure"] is None


LONG = "x" * 4097


@pytest.mark.parametrize(
    "payload, fragment",
    [
        pytest.param({"messaging_product": None, **text()}, "messaging_product", id="no-messaging-product"),
        pytest.param({"type": "text", "text": {"body": "Hi"}}, "to", id="no-recipient"),
        pytest.param(text(to="call me maybe"), "phone number", id="bad-recipient"),
        pytest.param({"to": CUSTOMER, "type": "fax", "fax": {}}, "type", id="unknown-type"),
        pytest.param({"to": CUSTOMER, "type": "text"}, "text", id="missing-type-object"),
        pytest.param(text(body=LONG), "4096", id="text-too-long"),
        pytest.param({"to": CUSTOMER, "type": "image", "image": {"id": "1", "link": "https://x.y/a.jpg"}},
                     "exactly one", id="media-id-and-link"),
        pytest.param({"to": CUSTOMER, "type": "audio", "audio": {"id": "1", "caption": "no"}}, "caption",
                     id="caption-on-audio"),
        pytest.param({"to": CUSTOMER, "type": "image", "image": {"link": "ftp://x.y/a.jpg"}}, "http", id="bad-link"),
        pytest.param({"to": CUSTOMER, "type": "location", "location": {"latitude": 91, "longitude": 0}}, "latitude",
                     id="latitude-out-of-range"),
        pytest.param({"to": CUSTOMER, "type": "contacts", "contacts": [{"name": {}}]}, "formatted_name",
                     id="contact-without-name"),
        pytest.param({"to": CUSTOMER, "type": "reaction", "reaction": {"emoji": "x"}}, "message_id",
                     id="reaction-without-message"),
        pytest.param({"to": CUSTOMER, "type": "interactive", "interactive": {
            "type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": str(i), "title": f"T{i}"}} for i in range(4)]}}}, "at most 3",
            id="four-buttons"),
        pytest.param({"to": CUSTOMER, "type": "interactive", "interactive": {
            "type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "a", "title": "Same"}},
                {"type": "reply", "reply": {"id": "b", "title": "Same"}}]}}}, "unique", id="duplicate-button-titles"),
        pytest.param({"to": CUSTOMER, "type": "interactive", "interactive": {
            "type": "button", "body": {"text": "Pick"}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "a", "title": "A title that is too long"}}]}}}, "20",
            id="button-title-too-long"),
        pytest.param({"to": CUSTOMER, "type": "interactive", "interactive": {
            "type": "list", "body": {"text": "Pick"}, "action": {"button": "Slots", "sections": [
                {"title": "A", "rows": [{"id": f"a{i}", "title": "r"} for i in range(6)]},
                {"title": "B", "rows": [{"id": f"b{i}", "title": "r"} for i in range(5)]}]}}}, "10 rows",
            id="list-with-eleven-rows"),
        pytest.param({"to": CUSTOMER, "type": "interactive", "interactive": {"type": "carousel"}}, "interactive.type",
                     id="unknown-interactive"),
        pytest.param(text(biz_opaque_callback_data="x" * 513), "512", id="opaque-data-too-long"),
        pytest.param({"to": CUSTOMER, "type": "template", "template": {"name": "welcome"}}, "language",
                     id="template-without-language"),
    ],
)
def test_malformed_requests_get_code_100_with_a_useful_message(graph, payload, fragment):
    customer_writes(graph)
    response = send(graph, payload)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == 100
    assert error["message"] == "(#100) Invalid parameter"
    assert error["type"] == "OAuthException" and error["fbtrace_id"]
    assert fragment in error["error_data"]["details"]
    assert graph.get("/_sandbox/messages").get_json()["data"] == []


def test_a_body_that_is_not_json_is_code_100(graph):
    response = graph.post(f"/{VERSION}/{PHONE_NUMBER_ID}/messages", data="to=1", headers=AUTH)
    assert response.status_code == 400 and error_of(response)["code"] == 100


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer not-a-token"}, id="unknown-token"),
        pytest.param({"Authorization": "Bearer other-token"}, id="another-number-s-token"),
    ],
)
def test_a_wrong_token_is_190(graph, headers):
    graph.post("/_sandbox/numbers", json=OTHER_NUMBER)
    customer_writes(graph)
    response = send(graph, text(), headers=headers)
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == 190 and error["type"] == "OAuthException"


def test_an_unknown_phone_number_id_is_100_subcode_33(graph):
    response = send(graph, text(), number="999999999999999")
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["error_subcode"]) == (100, 33)
    assert "999999999999999" in error["message"]


def test_free_form_needs_the_customer_service_window(graph):
    refused = send(graph, text())
    assert refused.status_code == 400
    error = error_of(refused)
    assert error["code"] == 131047 and error["message"] == "(#131047) Re-engagement message"
    assert "24 hours" in error["error_data"]["details"]

    customer_writes(graph)
    assert send(graph, text()).status_code == 200

    graph.post("/_sandbox/clock", json={"advance": 24 * 3600 - 60})
    assert send(graph, text(to="+16505551234")).status_code == 200  # still inside, one minute left
    graph.post("/_sandbox/clock", json={"advance": 61})
    assert error_of(send(graph, text()))["code"] == 131047

    customer_writes(graph)  # every user message opens the window again
    assert send(graph, text()).status_code == 200


def test_the_window_is_per_number_and_user(graph):
    graph.post("/_sandbox/numbers", json=OTHER_NUMBER)
    customer_writes(graph, number=OTHER_NUMBER["phone_number_id"])
    assert error_of(send(graph, text()))["code"] == 131047
    other = send(graph, text(), number=OTHER_NUMBER["phone_number_id"], headers={"Authorization": "Bearer other-token"})
    assert other.status_code == 200
    customer_writes(graph, wa_id="447700900123")
    assert error_of(send(graph, text()))["code"] == 131047


def test_window_errors_can_arrive_asynchronously_instead(graph):
    graph.patch(f"/_sandbox/numbers/{PHONE_NUMBER_ID}", json={"async_window_errors": True})
    response = send(graph, text())
    assert response.status_code == 200
    [recorded] = graph.get("/_sandbox/messages").get_json()["data"]
    assert recorded["failure"]["code"] == 131047
    assert [s["status"] for s in recorded["statuses"]] == ["failed"]


def test_sending_to_the_number_itself_is_131021(graph):
    response = send(graph, text(to=f"+{DISPLAY_NUMBER}"))
    assert response.status_code == 400 and error_of(response)["code"] == 131021


def test_undeliverable_recipients_are_accepted_then_fail_with_131026(graph):
    graph.patch(f"/_sandbox/numbers/{PHONE_NUMBER_ID}", json={"undeliverable": ["+1 555 000 0000"]})
    customer_writes(graph, wa_id="15550000000")
    assert send(graph, text(to="15550000000")).status_code == 200
    [recorded] = graph.get("/_sandbox/messages").get_json()["data"]
    assert recorded["failure"]["code"] == 131026
    assert recorded["failure"]["title"] == "Message undeliverable"
    assert [s["status"] for s in recorded["statuses"]] == ["failed"]


def test_an_unknown_media_id_fails_later_with_131053(graph):
    customer_writes(graph)
    assert send(graph, {"to": CUSTOMER, "type": "image", "image": {"id": "123456789"}}).status_code == 200
    [recorded] = graph.get("/_sandbox/messages").get_json()["data"]
    assert recorded["failure"]["code"] == 131053


def test_mark_as_read_answers_success_for_a_received_message(graph):
    [wamid] = customer_writes(graph)["message_ids"]
    response = send(graph, {"status": "read", "message_id": wamid, "typing_indicator": {"type": "text"}})
    assert response.status_code == 200 and response.get_json() == {"success": True}
    [inbound] = graph.get("/_sandbox/inbound").get_json()["data"]
    assert inbound["read"] is True

    unknown = send(graph, {"status": "read", "message_id": "wamid.NOT_RECEIVED"})
    assert unknown.status_code == 400 and error_of(unknown)["code"] == 100


def test_pricing_follows_the_window_and_the_free_entry_point(graph):
    customer_writes(graph, referral={"source_type": "ad", "headline": "Spring sale"})
    send(graph, text())
    customer_writes(graph, wa_id="447700900123")
    send(graph, text(to="447700900123"))
    [entry_point, service] = graph.get("/_sandbox/messages").get_json()["data"]
    assert entry_point["pricing"] == {"billable": False, "pricing_model": "PMP", "category": "service",
                                      "type": "free_entry_point"}
    assert service["pricing"]["type"] == "free_customer_service" and service["pricing"]["billable"] is False
