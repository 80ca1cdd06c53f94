"""What the campaign acceptance tests need the sandbox to play: an error per recipient, a 130429 storm,
a quality drop to RED, and customers replying to and tapping the buttons of a campaign's template."""

from __future__ import annotations

import pytest

from tests.sandbox.helpers import (
    AUTH,
    CUSTOMER,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    VERSION,
    WABA_ID,
    WELCOME,
    drain,
    error_of,
    seed_template,
    send,
    webhooks,
)

NUMBER_URL = f"/_sandbox/numbers/{PHONE_NUMBER_ID}"
OTHER_CUSTOMER = "5511987654321"
PROMO = {
    "waba_id": WABA_ID,
    "name": "summer_promo",
    "language": "en_US",
    "category": "MARKETING",
    "components": [
        {"type": "BODY", "text": "Our summer sale starts today."},
        {"type": "BUTTONS", "buttons": [
            {"type": "QUICK_REPLY", "text": "Stop promotions"},
            {"type": "QUICK_REPLY", "text": "Tell me more"},
            {"type": "URL", "text": "Shop", "url": "https://shop.example/sale"},
        ]},
    ],
}


def welcome_to(wa_id: str) -> dict:
    return {"to": wa_id, "type": "template", "template": {"name": "welcome", "language": {"code": "en_US"}}}


def faults(graph, **changes) -> dict:
    response = graph.patch("/_sandbox/faults", json=changes)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def frozen(graph):
    graph.post("/_sandbox/clock", json={"freeze": True})
    seed_template(graph, WELCOME)
    return graph


# -- an error per recipient ---------------------------------------------------------------------------


@pytest.mark.parametrize("code,status", [(131049, 400), (131048, 429), (131026, 400), (131056, 400), (131050, 400)])
def test_a_recipient_error_answers_meta_s_error_for_that_recipient_only(frozen, code, status):
    graph = frozen
    faults(graph, recipient_errors={CUSTOMER: {"code": code, "times": 1}})
    refused = send(graph, welcome_to(CUSTOMER))
    assert refused.status_code == status
    error = error_of(refused)
    assert error["code"] == code and error["message"].startswith(f"(#{code}) ")
    assert error["type"] == "OAuthException" and error["fbtrace_id"]
    assert error["error_data"]["messaging_product"] == "whatsapp" and error["error_data"]["details"]

    assert send(graph, welcome_to(OTHER_CUSTOMER)).status_code == 200
    assert send(graph, welcome_to(CUSTOMER)).status_code == 200  # `times` used up
    assert graph.get("/_sandbox/faults").get_json()["recipient_errors"] == {}
    logged = graph.get("/_sandbox/requests", query_string={"kind": "messages"}).get_json()["data"]
    assert [entry["error_code"] for entry in logged] == [code, None, None]


def test_times_counts_down_and_null_means_always(frozen):
    graph = frozen
    faults(graph, recipient_errors={f"+{CUSTOMER}": {"code": 131049, "times": 2}, OTHER_CUSTOMER: {"code": 131048}})
    assert graph.get("/_sandbox/faults").get_json()["recipient_errors"][CUSTOMER] == {
        "code": 131049, "times": 2, "async": False}
    assert [send(graph, welcome_to(CUSTOMER)).status_code for _ in range(3)] == [400, 400, 200]
    assert {send(graph, welcome_to(OTHER_CUSTOMER)).status_code for _ in range(5)} == {429}
    faults(graph, recipient_errors={})
    assert send(graph, welcome_to(OTHER_CUSTOMER)).status_code == 200


def test_an_async_recipient_error_is_accepted_then_fails_by_webhook(with_receiver, receiver):
    graph = with_receiver
    seed_template(graph, WELCOME)
    faults(graph, recipient_errors={CUSTOMER: {"code": 131049, "times": 1, "async": True}})
    accepted = send(graph, welcome_to(CUSTOMER))
    assert accepted.status_code == 200
    wamid = accepted.get_json()["messages"][0]["id"]
    drain(graph)
    [status] = receiver.statuses()
    assert status["id"] == wamid and status["status"] == "failed"
    assert status["errors"][0]["code"] == 131049 and "pricing" not in status


@pytest.mark.parametrize("spec,fragment", [
    ({CUSTOMER: {"code": 999}}, "error code"),
    ({CUSTOMER: {"code": 131049, "times": 0}}, "times"),
    ({CUSTOMER: {"code": 131049, "count": 1}}, "takes code"),
    ({CUSTOMER: {"code": 131049, "async": "yes"}}, "true or false"),
    ([CUSTOMER], "must map"),
])
def test_recipient_errors_are_validated(graph, spec, fragment):
    response = graph.patch("/_sandbox/faults", json={"recipient_errors": spec})
    assert response.status_code == 400 and fragment in response.get_json()["error"]


def test_reset_clears_recipient_errors(frozen):
    faults(frozen, recipient_errors={CUSTOMER: {"code": 131049}})
    frozen.post("/_sandbox/reset")
    assert frozen.get("/_sandbox/faults").get_json()["recipient_errors"] == {}


# -- a 130429 storm -----------------------------------------------------------------------------------


def test_a_storm_answers_130429_to_every_send_for_its_seconds(frozen):
    graph = frozen
    until = faults(graph, rate_limit_storm_seconds=30)["rate_limit_storm_until"]
    assert until == graph.get("/_sandbox/clock").get_json()["now"] + 30
    for wa_id in (CUSTOMER, OTHER_CUSTOMER):
        throttled = send(graph, welcome_to(wa_id))
        assert throttled.status_code == 429
        assert error_of(throttled)["code"] == 130429 and error_of(throttled)["error_subcode"] == 2494055
    assert graph.get(f"/{VERSION}/{PHONE_NUMBER_ID}", headers=AUTH).status_code == 200  # only sends are throttled

    graph.post("/_sandbox/clock", json={"advance": 30})
    assert send(graph, welcome_to(CUSTOMER)).status_code == 200
    assert graph.get("/_sandbox/faults").get_json()["rate_limit_storm_until"] == 0.0


def test_a_storm_can_be_ended_early_and_the_rate_knob_also_throttles_everything(frozen):
    graph = frozen
    faults(graph, rate_limit_storm_seconds=600)
    assert send(graph, welcome_to(CUSTOMER)).status_code == 429
    faults(graph, rate_limit_storm_seconds=0)
    assert send(graph, welcome_to(CUSTOMER)).status_code == 200
    faults(graph, rate_limit_rate=1.0)
    assert [send(graph, welcome_to(OTHER_CUSTOMER)).status_code for _ in range(3)] == [429] * 3
    faults(graph, rate_limit_rate=0.0)
    assert send(graph, welcome_to(OTHER_CUSTOMER)).status_code == 200


# -- a quality drop -----------------------------------------------------------------------------------


def test_a_drop_to_red_with_a_lower_limit_is_one_downgrade_webhook_and_shows_on_the_number(with_receiver, receiver):
    graph = with_receiver
    graph.patch(NUMBER_URL, json={"messaging_limit_tier": "TIER_10K"})
    changed = graph.post(f"{NUMBER_URL}/quality", json={
        "quality_rating": "RED", "messaging_limit_tier": "TIER_2K", "event": "DOWNGRADE"}).get_json()
    assert changed["event"] == "DOWNGRADE"
    drain(graph)
    [payload] = receiver.wait_for(1)
    change = payload["entry"][0]["changes"][0]
    assert payload["entry"][0]["id"] == WABA_ID and isinstance(payload["entry"][0]["time"], int)
    assert change == {"field": "phone_number_quality_update", "value": {
        "display_phone_number": DISPLAY_NUMBER, "event": "DOWNGRADE", "old_limit": "TIER_10K",
        "current_limit": "TIER_2K", "max_daily_conversations_per_business": 2000}}

    fields = "quality_rating,status,whatsapp_business_manager_messaging_limit,health_status"
    number = graph.get(f"/{VERSION}/{PHONE_NUMBER_ID}", query_string={"fields": fields}, headers=AUTH).get_json()
    assert (number["quality_rating"], number["status"], number["whatsapp_business_manager_messaging_limit"]) == (
        "RED", "FLAGGED", "TIER_2K")
    assert number["health_status"]["can_send_message"] == "LIMITED"
    control = graph.get(NUMBER_URL).get_json()
    assert (control["quality_rating"], control["messaging_limit_tier"]) == ("RED", "TIER_2K")


def test_quality_alone_going_red_is_flagged(with_receiver, receiver):
    graph = with_receiver
    assert graph.post(f"{NUMBER_URL}/quality", json={"quality_rating": "RED"}).get_json()["event"] == "FLAGGED"
    drain(graph)
    assert [w["payload"]["entry"][0]["changes"][0]["value"]["event"]
            for w in webhooks(graph, field="phone_number_quality_update")] == ["FLAGGED"]


# -- customers answering a campaign -------------------------------------------------------------------


def sent_promo(graph, to: str = CUSTOMER, payloads: dict[int, str] | None = None) -> str:
    seed_template(graph, PROMO)
    components = [{"type": "button", "sub_type": "quick_reply", "index": str(index),
                   "parameters": [{"type": "payload", "payload": payload}]}
                  for index, payload in (payloads or {}).items()]
    template = {"name": "summer_promo", "language": {"code": "en_US"}, "components": components}
    response = send(graph, {"to": to, "type": "template", "template": template})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["messages"][0]["id"]


def inbound(graph, spec: dict):
    return graph.post(f"{NUMBER_URL}/inbound", json=spec)


def test_a_reply_to_a_campaign_message_needs_only_its_wamid_and_text(graph):
    wamid = sent_promo(graph)
    [message] = inbound(graph, {"context": {"id": wamid}, "text": "Is it for shoes too?"}).get_json()[
        "webhook"]["entry"][0]["changes"][0]["value"]["messages"]
    assert message["from"] == CUSTOMER and message["type"] == "text"
    assert message["text"] == {"body": "Is it for shoes too?"}
    assert message["context"] == {"id": wamid, "from": DISPLAY_NUMBER}


def test_a_tap_on_a_quick_reply_carries_the_payload_the_send_gave(graph):
    wamid = sent_promo(graph, payloads={1: "campaign-42:more"})
    value = inbound(graph, {"context": {"id": wamid}, "type": "button", "button": {"index": 1}}).get_json()[
        "webhook"]["entry"][0]["changes"][0]["value"]
    [message] = value["messages"]
    assert message["type"] == "button" and message["from"] == CUSTOMER
    assert message["button"] == {"payload": "campaign-42:more", "text": "Tell me more"}
    assert message["context"] == {"id": wamid, "from": DISPLAY_NUMBER}
    assert value["contacts"][0]["wa_id"] == CUSTOMER


def test_without_a_payload_the_tap_carries_the_button_s_label(graph):
    wamid = sent_promo(graph)
    [message] = inbound(graph, {"context": {"id": wamid}, "type": "button", "button": 0}).get_json()[
        "webhook"]["entry"][0]["changes"][0]["value"]["messages"]
    assert message["button"] == {"payload": "Stop promotions", "text": "Stop promotions"}


def test_many_customers_answer_in_one_post(graph):
    first, second = sent_promo(graph), send(graph, {"to": OTHER_CUSTOMER, "type": "template", "template": {
        "name": "summer_promo", "language": {"code": "en_US"}}}).get_json()["messages"][0]["id"]
    messages = inbound(graph, {"messages": [
        {"context": {"id": first}, "type": "button", "button": {"index": 0}},
        {"context": {"id": second}, "text": "thanks"},
    ]}).get_json()["webhook"]["entry"][0]["changes"][0]["value"]["messages"]
    assert [(m["from"], m["type"]) for m in messages] == [(CUSTOMER, "button"), (OTHER_CUSTOMER, "text")]


@pytest.mark.parametrize("spec,fragment", [
    ({"type": "button", "button": {"index": 0}, "from": CUSTOMER}, "context.id"),
    ({"type": "button", "button": {"index": 2}}, "not a quick-reply button"),
    ({"type": "button", "button": {"index": "0"}}, "whole number"),
    ({"text": "hi", "context": {"id": "wamid.unknown"}}, "from"),
])
def test_bad_taps_are_400(graph, spec, fragment):
    wamid = sent_promo(graph)
    if "from" not in spec:
        spec = {"context": {"id": wamid}, **spec}
    response = inbound(graph, spec)
    assert response.status_code == 400 and fragment in response.get_json()["error"]


def test_a_tap_on_a_text_message_is_refused(graph):
    graph.post(f"{NUMBER_URL}/inbound", json={"from": CUSTOMER, "text": "hello"})
    wamid = send(graph, {"to": CUSTOMER, "type": "text", "text": {"body": "Hi"}}).get_json()["messages"][0]["id"]
    response = inbound(graph, {"context": {"id": wamid}, "type": "button", "button": {"index": 0}})
    assert response.status_code == 400 and "template message" in response.get_json()["error"]
