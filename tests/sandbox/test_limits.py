"""Throughput (130429), pair rate (131056), the messaging-limit tier, and the fault knobs."""

import time

import pytest

from tests.sandbox.helpers import PHONE_NUMBER_ID, WELCOME, customer_writes, error_of, seed_template, send, text

NUMBER_URL = f"/_sandbox/numbers/{PHONE_NUMBER_ID}"


def welcome_to(wa_id: str) -> dict:
    return {"to": wa_id, "type": "template", "template": {"name": "welcome", "language": {"code": "en_US"}}}


@pytest.fixture
def frozen(graph):
    graph.post("/_sandbox/clock", json={"freeze": True})
    return graph


def test_throughput_past_the_number_s_rate_is_130429(frozen):
    graph = frozen
    graph.patch(NUMBER_URL, json={"throughput_mps": 3})
    seed_template(graph, WELCOME)
    for index in range(3):
        assert send(graph, welcome_to(f"4477009000{index:02d}")).status_code == 200
    refused = send(graph, welcome_to("447700900099"))
    assert refused.status_code == 429
    error = error_of(refused)
    assert error["code"] == 130429 and error["error_subcode"] == 2494055
    assert error["error_data"]["details"] == "Cloud API message throughput has been reached."

    graph.post("/_sandbox/clock", json={"advance": 1.0})
    assert send(graph, welcome_to("447700900099")).status_code == 200
    assert len(graph.get("/_sandbox/messages").get_json()["data"]) == 4


def test_the_default_throughput_is_80_per_second(frozen):
    graph = frozen
    seed_template(graph, WELCOME)
    codes = [send(graph, welcome_to(f"44770090{index:04d}")).status_code for index in range(81)]
    assert codes.count(200) == 80 and codes[-1] == 429


def test_inbound_messages_count_toward_throughput(frozen):
    graph = frozen
    graph.patch(NUMBER_URL, json={"throughput_mps": 2})
    customer_writes(graph)
    customer_writes(graph)
    assert error_of(send(graph, text()))["code"] == 130429


def test_pair_rate_allows_a_burst_then_makes_the_user_wait(frozen):
    graph = frozen
    graph.patch(NUMBER_URL, json={"pair_rate_burst": 3})
    customer_writes(graph)
    customer_writes(graph, wa_id="447700900123")
    for _ in range(3):
        assert send(graph, text()).status_code == 200
    refused = send(graph, text())
    assert refused.status_code == 400 and error_of(refused)["code"] == 131056
    assert send(graph, text(to="447700900123")).status_code == 200  # other users are not affected

    graph.post("/_sandbox/clock", json={"advance": 7})  # the burst is over, but 3 x 6 s are owed
    assert error_of(send(graph, text()))["code"] == 131056
    graph.post("/_sandbox/clock", json={"advance": 11})
    assert send(graph, text()).status_code == 200


def test_pair_rate_steady_pace_is_one_message_per_six_seconds(frozen):
    graph = frozen
    customer_writes(graph)
    assert send(graph, text()).status_code == 200
    graph.post("/_sandbox/clock", json={"advance": 6})
    assert send(graph, text()).status_code == 200
    graph.post("/_sandbox/clock", json={"advance": 6})
    assert send(graph, text()).status_code == 200


def test_refused_requests_use_no_quota(frozen):
    graph = frozen
    graph.patch(NUMBER_URL, json={"pair_rate_burst": 1, "throughput_mps": 1})
    assert error_of(send(graph, text()))["code"] == 131047  # outside the window
    customer_writes(graph)
    graph.post("/_sandbox/clock", json={"advance": 1})
    assert send(graph, text()).status_code == 200


def test_the_messaging_limit_caps_unique_users_reached_outside_a_window(graph):
    graph.patch(NUMBER_URL, json={"messaging_limit_tier": "TIER_50", "throughput_mps": 1000})
    seed_template(graph, WELCOME)
    users = [f"44770090{index:04d}" for index in range(51)]
    customer_writes(graph, wa_id="15550001234")  # inside a window: not counted
    assert send(graph, welcome_to("15550001234")).status_code == 200
    for wa_id in users:
        assert send(graph, welcome_to(wa_id)).status_code == 200  # accepted: Meta has no sync code for this
    by_user = {m["wa_id"]: m for m in graph.get("/_sandbox/messages").get_json()["data"]}
    failed = [wa_id for wa_id in users if by_user[wa_id]["failure"]]
    assert failed == [users[50]]
    assert by_user[users[50]]["failure"]["code"] == 131048
    assert "TIER_50" in by_user[users[50]]["failure"]["error_data"]["details"]

    graph.post("/_sandbox/clock", json={"advance": 3600})
    send(graph, welcome_to(users[0]))  # reached already: free
    send(graph, welcome_to(users[50]))  # still over the limit
    graph.post("/_sandbox/clock", json={"advance": 24 * 3600 - 1800})  # the first 50 reaches expired, not the retry
    send(graph, welcome_to("447700909999"))
    latest = graph.get("/_sandbox/messages").get_json()["data"][-3:]
    assert [m["failure"] and m["failure"]["code"] for m in latest] == [None, 131048, None]


def test_the_tier_is_shared_by_the_numbers_of_a_portfolio(graph):
    graph.patch(NUMBER_URL, json={"messaging_limit_tier": "TIER_50", "business_id": "portfolio-1"})
    second = {"phone_number_id": "200000000000002", "waba_id": "300000000000003", "business_id": "portfolio-1",
              "display_phone_number": "15550009999", "access_token": "t2", "app_secret": "s2"}
    assert graph.post("/_sandbox/numbers", json=second).get_json()["messaging_limit_tier"] == "TIER_50"
    number = graph.get("/v24.0/200000000000002", headers={"Authorization": "Bearer t2"}).get_json()
    assert number["whatsapp_business_manager_messaging_limit"] == "TIER_50"


def test_fault_knobs_inject_5xx_and_429(graph):
    customer_writes(graph)
    graph.patch("/_sandbox/faults", json={"error_5xx_rate": 1.0})
    failed = send(graph, text())
    assert failed.status_code == 500 and error_of(failed)["code"] == 131000
    graph.patch("/_sandbox/faults", json={"error_5xx_rate": 0.0, "rate_limit_rate": 1.0})
    throttled = send(graph, text())
    assert throttled.status_code == 429 and error_of(throttled)["code"] == 130429
    graph.patch("/_sandbox/faults", json={"rate_limit_rate": 0.0})
    assert send(graph, text()).status_code == 200
    assert len(graph.get("/_sandbox/messages").get_json()["data"]) == 1


def test_faults_are_deterministic_for_a_seed(graph):
    def outcomes() -> list[int]:
        graph.post("/_sandbox/reset")
        customer_writes(graph)
        graph.patch("/_sandbox/faults", json={"seed": 7, "error_5xx_rate": 0.3, "rate_limit_rate": 0.3})
        return [send(graph, text()).status_code for _ in range(20)]

    first = outcomes()
    assert first == outcomes()
    assert {200, 429, 500} <= set(first)


def test_added_latency_slows_graph_calls_only(graph):
    graph.patch("/_sandbox/faults", json={"latency_ms": 120})
    started = time.monotonic()
    send(graph, text())
    assert time.monotonic() - started >= 0.12
    started = time.monotonic()
    graph.get("/_sandbox/messages")
    assert time.monotonic() - started < 0.1


def test_fault_knobs_are_validated(graph):
    response = graph.patch("/_sandbox/faults", json={"error_5xx_rate": 2})
    assert response.status_code == 400 and "between 0 and 1" in response.get_json()["error"]
    assert graph.patch("/_sandbox/faults", json={"typo_rate": 0.1}).status_code == 400
