"""Templates: management endpoints, review + status webhooks, and the send-time checks
(132001, 132000, 132012, 132015, 132016)."""

import json

import pytest

from tests.sandbox.helpers import (
    AUTH,
    CUSTOMER,
    ORDER_UPDATE,
    VERSION,
    WABA_ID,
    WELCOME,
    drain,
    error_of,
    seed_template,
    send,
    sign,
)

TEMPLATES_URL = f"/{VERSION}/{WABA_ID}/message_templates"


def definition(name: str, **changes) -> dict:
    return {
        "name": name,
        "language": "en_US",
        "category": "MARKETING",
        "components": [{"type": "BODY", "text": "Hello {{1}}, spring sale starts now."}],
        **changes,
    }


def order_update(*components, language="en_US") -> dict:
    return {"to": CUSTOMER, "type": "template",
            "template": {"name": "order_update", "language": {"code": language}, "components": list(components)}}


HEADER = {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example/p.jpg"}}]}
BODY = {"type": "body", "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "ord-8812"}]}
URL_BUTTON = {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "ord-8812"}]}


def test_a_created_template_is_pending_then_approved_with_a_signed_status_webhook(with_receiver, receiver):
    graph = with_receiver
    response = graph.post(TEMPLATES_URL, json=definition("spring_sale"), headers=AUTH)
    assert response.status_code == 200
    created = response.get_json()
    assert created == {"id": created["id"], "status": "PENDING", "category": "MARKETING"}

    drain(graph)
    [payload] = receiver.wait_for(1)
    post = receiver.posts[0]
    assert post["headers"]["X-Hub-Signature-256"] == sign(post["raw"])
    [entry] = payload["entry"]
    assert entry["id"] == WABA_ID and isinstance(entry["time"], int)
    [change] = entry["changes"]
    assert change["field"] == "message_template_status_update"
    assert change["value"] == {
        "event": "APPROVED",
        "message_template_id": int(created["id"]),
        "message_template_name": "spring_sale",
        "message_template_language": "en_US",
        "reason": "NONE",
        "message_template_category": "MARKETING",
    }
    listed = graph.get(TEMPLATES_URL, query_string={"name": "spring_sale"}, headers=AUTH).get_json()["data"]
    assert [(t["name"], t["status"]) for t in listed] == [("spring_sale", "APPROVED")]


def test_names_containing_reject_are_rejected(with_receiver, receiver):
    graph = with_receiver
    template_id = graph.post(TEMPLATES_URL, json=definition("please_reject_me"), headers=AUTH).get_json()["id"]
    drain(graph)
    [payload] = receiver.wait_for(1)
    value = payload["entry"][0]["changes"][0]["value"]
    assert (value["event"], value["reason"]) == ("REJECTED", "INVALID_FORMAT")
    fetched = graph.get(f"/{VERSION}/{template_id}", query_string={"fields": "status,rejected_reason"},
                        headers=AUTH).get_json()
    assert fetched == {"status": "REJECTED", "rejected_reason": "INVALID_FORMAT", "id": template_id}


def test_a_template_is_not_sendable_while_pending(graph):
    graph.patch("/_sandbox/config", json={"template_review_seconds": 30})
    graph.post(TEMPLATES_URL, json=definition("spring_sale"), headers=AUTH)
    response = send(graph, {"to": CUSTOMER, "type": "template", "template": {
        "name": "spring_sale", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]}})
    assert response.status_code == 404 and error_of(response)["code"] == 132001
    assert "PENDING" in error_of(response)["error_data"]["details"]


@pytest.mark.parametrize(
    "body, fragment, subcode",
    [
        pytest.param(definition("Spring Sale"), "name", None, id="bad-name"),
        pytest.param(definition("spring_sale", category="PROMO"), "category", None, id="invalid-category"),
        pytest.param(definition("spring_sale", language="english"), "language", None, id="bad-language"),
        pytest.param(definition("spring_sale", components=[{"type": "FOOTER", "text": "x"}]), "BODY", None,
                     id="no-body"),
        pytest.param(definition("spring_sale", components=[{"type": "BODY", "text": "{{1}} is on sale now"}]),
                     "start or end", 2388299, id="variable-at-start"),
        pytest.param(definition("spring_sale", components=[{"type": "BODY", "text": "Hi {{1}} and {{3}} today"}]),
                     "sequence", None, id="positional-gap"),
        pytest.param(definition("spring_sale", components=[{"type": "BODY", "text": "x" * 1025}]), "1024", None,
                     id="body-too-long"),
        pytest.param(definition("spring_sale", components=[
            {"type": "BODY", "text": "Pick one please"},
            {"type": "BUTTONS", "buttons": [{"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+1555"}] * 2}]),
            "at most 1", None, id="two-phone-buttons"),
    ],
)
def test_malformed_definitions_are_refused_with_code_100(graph, body, fragment, subcode):
    response = graph.post(TEMPLATES_URL, json=body, headers=AUTH)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == 100 and fragment in error["error_data"]["details"]
    assert error.get("error_subcode") == subcode
    assert graph.get(TEMPLATES_URL, headers=AUTH).get_json()["data"] == []


def test_the_same_name_and_language_cannot_be_created_twice(graph):
    graph.post(TEMPLATES_URL, json=definition("spring_sale"), headers=AUTH)
    again = graph.post(TEMPLATES_URL, json=definition("spring_sale"), headers=AUTH)
    assert error_of(again)["error_subcode"] == 2388024
    assert graph.post(TEMPLATES_URL, json=definition("spring_sale", language="es"), headers=AUTH).status_code == 200


def test_template_management_needs_a_token_of_the_waba(graph):
    response = graph.get(TEMPLATES_URL, headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401 and error_of(response)["code"] == 190
    unknown = graph.get(f"/{VERSION}/987654321/message_templates", headers=AUTH)
    assert error_of(unknown)["code"] == 100 and error_of(unknown)["error_subcode"] == 33


def test_listing_pages_and_filters_and_delete_by_name(graph):
    for name in ("alpha", "beta", "gamma"):
        seed_template(graph, WELCOME, name=name)
    seed_template(graph, WELCOME, name="alpha", language="es")
    seed_template(graph, WELCOME, name="paused_one", status="PAUSED")

    first = graph.get(TEMPLATES_URL, query_string={"limit": 2}, headers=AUTH).get_json()
    assert [t["name"] for t in first["data"]] == ["alpha", "beta"]
    rest = graph.get(TEMPLATES_URL, query_string={"limit": 2, "after": first["paging"]["cursors"]["after"]},
                     headers=AUTH).get_json()
    assert [(t["name"], t["language"]) for t in rest["data"]] == [("gamma", "en_US"), ("alpha", "es")]
    assert "next" in first["paging"]
    paused = graph.get(TEMPLATES_URL, query_string={"status": "PAUSED"}, headers=AUTH).get_json()["data"]
    assert [t["name"] for t in paused] == ["paused_one"]

    es = next(t for t in rest["data"] if t["language"] == "es")
    assert graph.delete(TEMPLATES_URL, query_string={"name": "alpha", "hsm_id": es["id"]},
                        headers=AUTH).get_json() == {"success": True}
    assert [t["language"] for t in graph.get(TEMPLATES_URL, query_string={"name": "alpha"},
                                             headers=AUTH).get_json()["data"]] == ["en_US"]
    graph.delete(TEMPLATES_URL, query_string={"name": "beta"}, headers=AUTH)
    assert error_of(graph.delete(TEMPLATES_URL, query_string={"name": "beta"}, headers=AUTH))["code"] == 100
    names = [t["name"] for t in graph.get(TEMPLATES_URL, headers=AUTH).get_json()["data"]]
    assert names == ["alpha", "gamma", "paused_one"]


def test_listing_answers_the_fields_meta_accepts_with_quality_scores_shaped_like_meta(graph):
    seed_template(graph, WELCOME, quality_score="YELLOW")
    seed_template(graph, ORDER_UPDATE)
    fields = ("id,name,language,status,category,components,quality_score,rejected_reason,previous_category,"
              "parameter_format,sub_category")
    response = graph.get(TEMPLATES_URL, query_string={"fields": fields, "limit": 100}, headers=AUTH)
    assert response.status_code == 200, response.get_json()
    listed = {t["name"]: t for t in response.get_json()["data"]}
    assert {name: t["quality_score"]["score"] for name, t in listed.items()} == {
        "welcome": "YELLOW", "order_update": "UNKNOWN"}  # Meta rates a new template UNKNOWN
    assert all(isinstance(t["quality_score"]["date"], int) for t in listed.values())
    welcome = listed["welcome"]
    assert (welcome["status"], welcome["category"], welcome["rejected_reason"], welcome["parameter_format"]) == (
        "APPROVED", "MARKETING", "NONE", "POSITIONAL")
    # Fields the node has but the template holds no value for are left out, as Meta does.
    assert "previous_category" not in welcome and "sub_category" not in welcome

    one = graph.get(f"/{VERSION}/{welcome['id']}", query_string={"fields": "quality_score,previous_category"},
                    headers=AUTH).get_json()
    assert one == {"quality_score": welcome["quality_score"], "id": welcome["id"]}
    refused = graph.get(TEMPLATES_URL, query_string={"fields": "name,colour"}, headers=AUTH)
    assert refused.status_code == 400 and error_of(refused)["code"] == 100


def test_a_seeded_quality_score_must_be_one_meta_uses(graph):
    response = graph.post("/_sandbox/templates", json={**WELCOME, "quality_score": "BLUE"})
    assert response.status_code == 400 and "quality_score" in response.get_json()["error"]


def test_template_management_calls_are_recorded(graph):
    graph.post(TEMPLATES_URL, json=definition("spring_sale"), headers=AUTH)
    [call] = graph.get("/_sandbox/requests", query_string={"kind": "templates"}).get_json()["data"]
    assert call["method"] == "POST" and call["body"]["name"] == "spring_sale" and call["status_code"] == 200


def test_a_template_with_the_right_parameters_is_sent_outside_the_window(graph):
    seed_template(graph, ORDER_UPDATE)
    response = send(graph, order_update(HEADER, BODY, URL_BUTTON,
                                        {"type": "button", "sub_type": "quick_reply", "index": "0",
                                         "parameters": [{"type": "payload", "payload": "STOP_PROMOS"}]}))
    assert response.status_code == 200, response.get_json()
    [recorded] = graph.get("/_sandbox/messages", query_string={"type": "template"}).get_json()["data"]
    assert recorded["pricing"] == {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}


@pytest.mark.parametrize(
    "components, language, code",
    [
        pytest.param((HEADER, BODY, URL_BUTTON), "es", 132001, id="wrong-language"),
        pytest.param((HEADER, URL_BUTTON, {"type": "body", "parameters": [{"type": "text", "text": "Pablo"}]}), "en_US",
                     132000, id="body-count"),
        pytest.param((BODY, URL_BUTTON), "en_US", 132000, id="header-missing"),
        pytest.param((HEADER, BODY), "en_US", 132000, id="url-button-parameter-missing"),
        pytest.param(({"type": "header", "parameters": [{"type": "text", "text": "Hi"}]}, BODY, URL_BUTTON), "en_US",
                     132012, id="header-format"),
        pytest.param((HEADER, BODY, {**URL_BUTTON, "sub_type": "quick_reply"}), "en_US", 132012,
                     id="button-sub-type"),
    ],
)
def test_template_sends_are_matched_against_the_approved_template(graph, components, language, code):
    seed_template(graph, ORDER_UPDATE)
    response = send(graph, order_update(*components, language=language))
    error = error_of(response)
    assert error["code"] == code, error
    assert response.status_code == (404 if code == 132001 else 400)
    assert graph.get("/_sandbox/messages").get_json()["data"] == []


def test_an_unknown_template_is_132001(graph):
    response = send(graph, {"to": CUSTOMER, "type": "template",
                            "template": {"name": "nope", "language": {"code": "en_US"}}})
    assert response.status_code == 404
    assert error_of(response)["message"] == "(#132001) Template name does not exist in the translation"


def test_named_parameters_must_match_by_name(graph):
    seed_template(graph, WELCOME, name="named", parameter_format="named",
                  components=[{"type": "BODY", "text": "Hi {{first_name}}, your code is {{code}} today."}])

    def send_named(*names):
        parameters = [{"type": "text", "parameter_name": name, "text": "v"} for name in names]
        return send(graph, {"to": CUSTOMER, "type": "template", "template": {
            "name": "named", "language": {"code": "en_US"},
            "components": [{"type": "body", "parameters": parameters}]}})

    assert send_named("code", "first_name").status_code == 200
    assert error_of(send_named("code", "last_name"))["code"] == 132000


def test_paused_and_disabled_templates_are_refused_and_announced(with_receiver, receiver):
    graph = with_receiver
    template = seed_template(graph, WELCOME)
    welcome = {"to": CUSTOMER, "type": "template", "template": {"name": "welcome", "language": {"code": "en_US"}}}
    assert send(graph, welcome).status_code == 200

    graph.post(f"/_sandbox/templates/{template['id']}/status", json={"status": "PAUSED"})
    assert error_of(send(graph, welcome))["code"] == 132015
    graph.post(f"/_sandbox/templates/{template['id']}/status", json={"status": "DISABLED"})
    assert error_of(send(graph, welcome))["code"] == 132016

    drain(graph)
    events = [json.loads(post["raw"])["entry"][0]["changes"][0]["value"]["event"]
              for post in receiver.posts if b"message_template_status_update" in post["raw"]]
    assert events == ["PAUSED", "DISABLED"]


def test_authentication_templates_take_the_code_twice(graph):
    seed_template(graph, {
        "waba_id": WABA_ID, "name": "login_code", "language": "en", "category": "AUTHENTICATION",
        "components": [{"type": "BODY", "add_security_recommendation": True},
                       {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]}]})
    code = [{"type": "text", "text": "482913"}]
    otp = {"to": CUSTOMER, "type": "template", "template": {
        "name": "login_code", "language": {"code": "en"},
        "components": [{"type": "body", "parameters": code}]}}
    assert error_of(send(graph, otp))["code"] == 132000
    otp["template"]["components"].append({"type": "button", "sub_type": "url", "index": "0", "parameters": code})
    assert send(graph, otp).status_code == 200
