"""Status webhooks reach a real local receiver signed, in order unless a knob says otherwise, with
retries, duplicates, reordering, delays and drops; quality updates; the verification handshake."""

import time

from tests.sandbox.helpers import (
    APP_SECRET,
    CUSTOMER,
    DISPLAY_NUMBER,
    PHONE_NUMBER_ID,
    WABA_ID,
    customer_writes,
    drain,
    send,
    sign,
    text,
    webhooks,
)

NUMBER_URL = f"/_sandbox/numbers/{PHONE_NUMBER_ID}"


def status_posts(receiver):
    return [post for post in receiver.posts if b'"statuses"' in post["raw"]]


def test_sent_delivered_read_arrive_signed_with_the_opaque_data(with_receiver, receiver):
    graph = with_receiver
    customer_writes(graph)
    wamid = send(graph, text(biz_opaque_callback_data="msg:77")).get_json()["messages"][0]["id"]
    drain(graph)
    receiver.wait_for(4)

    for post in receiver.posts:
        assert post["headers"]["X-Hub-Signature-256"] == sign(post["raw"], APP_SECRET)
        assert post["headers"]["Content-Type"] == "application/json"
    statuses = receiver.statuses()
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    for status in statuses:
        assert status["id"] == wamid and status["recipient_id"] == CUSTOMER
        assert status["biz_opaque_callback_data"] == "msg:77"
        assert isinstance(status["timestamp"], str) and status["timestamp"].isdigit()
    sent, delivered, read = statuses
    assert sent["pricing"] == {"billable": False, "pricing_model": "PMP", "category": "service",
                               "type": "free_customer_service"}
    assert "expiration_timestamp" in sent["conversation"]
    assert "expiration_timestamp" not in delivered["conversation"]
    assert "pricing" not in read

    payload = receiver.payloads()[-1]
    assert payload["object"] == "whatsapp_business_account"
    [entry] = payload["entry"]
    assert entry["id"] == WABA_ID
    [change] = entry["changes"]
    assert change["field"] == "messages"
    assert change["value"]["metadata"] == {"display_phone_number": DISPLAY_NUMBER, "phone_number_id": PHONE_NUMBER_ID}
    assert all(record["outcome"] == "delivered" for record in webhooks(graph))


def test_a_signature_uses_the_raw_bytes_with_non_ascii_escaped(with_receiver, receiver):
    graph = with_receiver
    customer_writes(graph, type="text", text={"body": "Olá, ¿qué tal? 👋"})
    drain(graph)
    [post] = receiver.posts
    assert b"\\u00e1" in post["raw"] and post["raw"].isascii()
    assert post["headers"]["X-Hub-Signature-256"] == sign(post["raw"])
    [message] = receiver.payloads()[0]["entry"][0]["changes"][0]["value"]["messages"]
    assert message["text"]["body"] == "Olá, ¿qué tal? 👋"


def test_failed_status_carries_the_error(with_receiver, receiver):
    graph = with_receiver
    graph.patch(NUMBER_URL, json={"undeliverable": ["15550000000"]})
    customer_writes(graph, wa_id="15550000000")
    send(graph, text(to="15550000000", biz_opaque_callback_data="row:1"))
    drain(graph)
    [failed] = receiver.statuses()
    assert failed["status"] == "failed" and failed["biz_opaque_callback_data"] == "row:1"
    [error] = failed["errors"]
    assert error["code"] == 131026 and set(error) == {"code", "title", "message", "error_data", "href"}


def test_the_send_answer_never_waits_for_webhooks(with_receiver, receiver):
    graph = with_receiver
    receiver.delay = 0.3
    graph.patch(NUMBER_URL, json={"auto_statuses": ["sent"]})
    customer_writes(graph)  # its webhook is still being answered while we send
    started = time.monotonic()
    assert send(graph, text()).status_code == 200
    assert time.monotonic() - started < 0.2
    drain(graph)
    assert [s["status"] for s in receiver.statuses()] == ["sent"]


def test_delays_space_the_statuses(with_receiver, receiver):
    graph = with_receiver
    graph.patch(NUMBER_URL, json={"webhook_delays": {"delivered": 0.15, "read": 0.3},
                                  "auto_statuses": ["sent", "read"]})
    customer_writes(graph)
    send(graph, text())
    drain(graph)
    posts = status_posts(receiver)
    assert [s["status"] for s in receiver.statuses()] == ["sent", "read"]
    assert posts[1]["at"] - posts[0]["at"] >= 0.25


def test_duplicates_knob_sends_each_status_twice(with_receiver, receiver):
    graph = with_receiver
    graph.patch(NUMBER_URL, json={"duplicate_rate": 1.0, "auto_statuses": ["sent", "delivered"]})
    customer_writes(graph)
    send(graph, text())
    drain(graph)
    posts = status_posts(receiver)
    assert [s["status"] for s in receiver.statuses()] == ["sent", "sent", "delivered", "delivered"]
    assert posts[0]["raw"] == posts[1]["raw"] and posts[2]["raw"] == posts[3]["raw"]
    assert sum(1 for record in webhooks(graph) if record["duplicate_of"]) == 3  # the inbound message too


def test_reorder_knob_delivers_read_before_delivered(with_receiver, receiver):
    graph = with_receiver
    graph.patch(NUMBER_URL, json={"reorder_rate": 1.0, "webhook_delays": {"delivered": 0.05, "read": 0.1}})
    customer_writes(graph)
    send(graph, text())
    drain(graph)
    statuses = receiver.statuses()
    assert [s["status"] for s in statuses] == ["sent", "read", "delivered"]
    by_status = {s["status"]: int(s["timestamp"]) for s in statuses}
    assert by_status["read"] >= by_status["delivered"]  # the event times stay truthful


def test_reordering_is_deterministic_for_a_seed(with_receiver, receiver):
    graph = with_receiver

    def orders():
        graph.patch("/_sandbox/config", json={"seed": 11})
        graph.patch(NUMBER_URL, json={"reorder_rate": 0.5, "auto_statuses": ["delivered", "read"],
                                      "pair_rate_burst": 1000, "pair_rate_interval_seconds": 60})
        receiver.posts.clear()
        customer_writes(graph)
        for _ in range(8):
            send(graph, text())
        drain(graph)
        return [s["status"] for s in receiver.statuses()]

    first = orders()
    assert first == orders()
    pairs = [tuple(first[i:i + 2]) for i in range(0, 16, 2)]
    assert {("delivered", "read"), ("read", "delivered")} == set(pairs)


def test_a_failing_callback_is_retried_a_bounded_number_of_times(with_receiver, receiver):
    graph = with_receiver
    receiver.answers = [500, 503]
    customer_writes(graph)
    drain(graph)
    [record] = webhooks(graph)
    assert [attempt["status_code"] for attempt in record["attempts"]] == [500, 503, 200]
    assert record["outcome"] == "delivered"

    receiver.answers = [500] * 10
    customer_writes(graph)
    drain(graph)
    record = webhooks(graph)[-1]
    assert len(record["attempts"]) == 3 and record["outcome"] == "failed"  # 1 + len(webhook_retry_delays)


def test_an_unreachable_callback_fails_after_retries(graph):
    graph.patch(NUMBER_URL, json={"callback_url": "http://127.0.0.1:9/unreachable"})
    customer_writes(graph)
    drain(graph)
    [record] = webhooks(graph)
    assert record["outcome"] == "failed" and all("error" in attempt for attempt in record["attempts"])


def test_dropped_webhooks_never_arrive(with_receiver, receiver):
    graph = with_receiver
    graph.patch("/_sandbox/faults", json={"webhook_drop_rate": 1.0})
    customer_writes(graph)
    send(graph, text())
    drain(graph)
    assert receiver.posts == []
    assert {record["outcome"] for record in webhooks(graph)} == {"dropped"}


def test_without_a_callback_url_webhooks_are_recorded_only(graph):
    customer_writes(graph)
    assert [record["outcome"] for record in webhooks(graph)] == ["no_callback"]


def test_quality_change_emits_phone_number_quality_update(with_receiver, receiver):
    graph = with_receiver
    graph.patch(NUMBER_URL, json={"messaging_limit_tier": "TIER_2K"})
    changed = graph.post(f"{NUMBER_URL}/quality", json={"quality_rating": "RED"}).get_json()
    assert changed["event"] == "FLAGGED"
    graph.post(f"{NUMBER_URL}/quality", json={"messaging_limit_tier": "TIER_250"})
    drain(graph)
    payloads = receiver.wait_for(2)
    for post in receiver.posts:
        assert post["headers"]["X-Hub-Signature-256"] == sign(post["raw"])
    flagged, downgraded = (p["entry"][0]["changes"][0] for p in payloads)
    assert flagged["field"] == "phone_number_quality_update"
    assert flagged["value"] == {"display_phone_number": DISPLAY_NUMBER, "event": "FLAGGED",
                                "current_limit": "TIER_2K", "max_daily_conversations_per_business": 2000}
    assert downgraded["value"]["event"] == "DOWNGRADE" and downgraded["value"]["old_limit"] == "TIER_2K"
    assert "phone_number_id" not in flagged["value"]

    number = graph.get(f"/v24.0/{PHONE_NUMBER_ID}", headers={"Authorization": "Bearer sandbox-token-1"}).get_json()
    assert number["quality_rating"] == "RED" and number["status"] == "FLAGGED"
    assert number["whatsapp_business_manager_messaging_limit"] == "TIER_250"


def test_a_quality_call_that_changes_nothing_is_refused(graph):
    response = graph.post(f"{NUMBER_URL}/quality", json={"quality_rating": "GREEN"})
    assert response.status_code == 400
    assert graph.post(f"{NUMBER_URL}/quality", json={"event": "THROUGHPUT_UPGRADE"}).get_json()["number"][
        "throughput_mps"] == 1000


def test_callback_verification_handshake(with_receiver, receiver):
    graph = with_receiver
    graph.patch(NUMBER_URL, json={"verify_token": "verify-me"})
    assert graph.post(f"{NUMBER_URL}/verify-callback").get_json()["verified"] is True
    wrong = graph.post(f"{NUMBER_URL}/verify-callback", json={"verify_token": "wrong"}).get_json()
    assert wrong["verified"] is False and wrong["status_code"] == 403
