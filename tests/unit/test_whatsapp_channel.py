"""Numbers, credentials at rest, and the webhook door."""

import json

import pytest
from werkzeug.test import EnvironBuilder, run_wsgi_app
from sqlalchemy import select, text

from shared import crypto
from shared.models import Job, JobStatus, MessageTemplate, NumberStatus, WebhookEvent, WebhookEventStatus, WhatsAppNumber
from shared.redis_client import get_redis
from shared.services import numbers, webhooks
from shared.settings import get_settings, use_settings
from shared.whatsapp.signatures import sign
from tests.factories import make_org, make_user

TOKEN = "EAAG-secret-access-token-123"
SECRET = "app-secret-0123456789"
NUMBER = {
    "waba_id": "102290129340398", "phone_number_id": "106540352242922", "display_phone_number": "15550783881",
    "access_token": TOKEN, "app_secret": SECRET, "verify_token": "verify-me-please",
}


@pytest.fixture
def number(client, admin_headers):
    response = client.post("/api/v1/numbers", json=NUMBER, headers=admin_headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def envelope(field, value, waba_id=NUMBER["waba_id"]):
    return {"object": "whatsapp_business_account",
            "entry": [{"id": waba_id, "changes": [{"field": field, "value": value}]}]}


def post_webhook(client, payload, secret=SECRET, signature=None):
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if signature is not False:
        headers["X-Hub-Signature-256"] = signature or sign(body, secret)
    return client.post("/api/v1/webhooks/whatsapp", data=body, headers=headers)


def message_payload(text_body="hello"):
    return envelope("messages", {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": NUMBER["display_phone_number"], "phone_number_id": NUMBER["phone_number_id"]},
        "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
        "messages": [{"from": "16505551234", "id": "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzMDMxNjE1MQA=",
                      "timestamp": "1749416383", "type": "text", "text": {"body": text_body}}],
    })


def test_credentials_are_write_only_and_unreadable_without_the_key(client, db_session, admin_headers, number):
    assert not {"access_token", "app_secret", "verify_token"} & set(number)
    assert number["has_verify_token"] is True
    stored = db_session.execute(
        text("SELECT row_to_json(w)::text FROM whatsapp_numbers w WHERE id = :id"), {"id": number["id"]}
    ).scalar_one()
    assert TOKEN not in stored and SECRET not in stored  # no column holds the plaintext
    row = db_session.get(WhatsAppNumber, number["id"])
    assert crypto.decrypt(row.access_token_encrypted) == TOKEN

    from cryptography.fernet import Fernet

    original = get_settings()
    use_settings(original.with_overrides(encryption_keys=(Fernet.generate_key().decode(),)))
    try:
        with pytest.raises(crypto.SecretUnreadableError):
            crypto.decrypt(row.access_token_encrypted)
    finally:
        use_settings(original)


def test_key_rotation_reencrypts_with_the_new_key(db_session, number):
    from cryptography.fernet import Fernet

    original = get_settings()
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    try:
        use_settings(original.with_overrides(encryption_keys=(old_key,)))
        row = db_session.get(WhatsAppNumber, number["id"])
        row.access_token_encrypted = crypto.encrypt(TOKEN)
        row.app_secret_encrypted = crypto.encrypt(SECRET)
        row.verify_token_encrypted = None
        use_settings(original.with_overrides(encryption_keys=(new_key, old_key)))
        assert numbers.rotate_secrets(db_session) >= 1
        use_settings(original.with_overrides(encryption_keys=(new_key,)))  # the old key is gone
        assert crypto.decrypt(row.access_token_encrypted) == TOKEN
    finally:
        use_settings(original)


def test_the_number_limit_and_one_owner_per_phone_number_id(client, db_session, login, admin_headers, number):
    other = make_org(db_session, plan_code="free")  # 1 number
    headers = login(make_user(db_session, other, role="org_admin"))
    taken = client.post("/api/v1/numbers", json=NUMBER, headers=headers)
    assert (taken.status_code, taken.get_json()["code"]) == (409, "phone_number_id_taken")
    first = client.post("/api/v1/numbers", json={**NUMBER, "phone_number_id": "999000111"}, headers=headers)
    assert first.status_code == 201
    over = client.post("/api/v1/numbers", json={**NUMBER, "phone_number_id": "999000112"}, headers=headers)
    assert (over.status_code, over.get_json()["code"]) == (403, "plan_limit_exceeded")


def test_the_subscription_handshake(client, number):
    ok = client.get("/api/v1/webhooks/whatsapp", query_string={
        "hub.mode": "subscribe", "hub.verify_token": "verify-me-please", "hub.challenge": "1158201444"})
    assert (ok.status_code, ok.get_data(as_text=True)) == (200, "1158201444")
    wrong = client.get("/api/v1/webhooks/whatsapp", query_string={
        "hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert wrong.status_code == 403


def test_a_signed_delivery_is_stored_and_queued_after_commit(client, db_session, number, published):
    response = post_webhook(client, message_payload())
    assert response.status_code == 200 and response.get_json() == {"status": "received"}
    event = db_session.execute(select(WebhookEvent)).scalar_one()
    assert event.status == WebhookEventStatus.received and event.has_messages
    assert event.phone_number_ids == [NUMBER["phone_number_id"]]
    # No task per request: the intake arms one drain, and a second delivery finds it pending.
    assert published == [("webhooks.drain", {"org_id": None})]
    assert post_webhook(client, message_payload("second")).status_code == 200
    assert published == [("webhooks.drain", {"org_id": None})]
    webhooks.clear_drain_flag()  # what the drain does first: the next delivery arms a new one
    assert post_webhook(client, message_payload("third")).status_code == 200
    assert published == [("webhooks.drain", {"org_id": None})] * 2


@pytest.mark.parametrize("signature", ["sha256=" + "0" * 64, False, "md5=abc"])
def test_a_bad_or_missing_signature_is_refused_and_nothing_stored(client, db_session, number, published, signature):
    before = int(get_redis().get(webhooks.BAD_SIGNATURE_COUNTER) or 0)
    response = post_webhook(client, message_payload(), signature=signature)
    assert (response.status_code, response.get_json()["code"]) == (401, "invalid_signature")
    assert db_session.execute(select(WebhookEvent)).scalars().all() == []
    assert published == []
    assert int(get_redis().get(webhooks.BAD_SIGNATURE_COUNTER)) == before + 1


def test_a_payload_for_an_unknown_number_is_recorded_not_processed(client, db_session, published):
    payload = message_payload()
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "404404404"
    response = post_webhook(client, payload, secret="anything")
    assert response.status_code == 200  # so Meta does not retry forever
    event = db_session.execute(select(WebhookEvent)).scalar_one()
    assert event.status == WebhookEventStatus.unroutable and published == []


def test_the_same_delivery_twice_is_stored_and_queued_once(client, db_session, number, published):
    payload = message_payload()
    assert post_webhook(client, payload).get_json() == {"status": "received"}
    assert post_webhook(client, payload).get_json() == {"status": "duplicate"}
    assert len(db_session.execute(select(WebhookEvent)).scalars().all()) == 1
    assert len(published) == 1


def _process_all(db_session):
    ids = db_session.execute(select(WebhookEvent.id)).scalars().all()
    return [webhooks.process_event(db_session, event_id=event_id) for event_id in ids]


def test_template_status_webhooks_move_the_template_and_a_repeat_changes_nothing(
    client, db_session, organization, number, published
):
    template = MessageTemplate(organization_id=organization.id, waba_id=NUMBER["waba_id"], name="order_update",
                               language="en_US", category="UTILITY", status="PENDING", meta_template_id="5550001",
                               components=[])
    db_session.add(template)
    db_session.flush()
    post_webhook(client, envelope("message_template_status_update", {
        "event": "APPROVED", "message_template_id": 5550001, "message_template_name": "order_update",
        "message_template_language": "en_US", "reason": "NONE"}))
    assert _process_all(db_session) == [True]
    db_session.refresh(template)
    assert (template.status, template.rejected_reason) == ("APPROVED", None)
    assert _process_all(db_session) == [False]  # the task again (a redelivery): nothing more happens


def test_a_quality_downgrade_flags_the_number_and_schedules_a_sync(client, db_session, number, published):
    post_webhook(client, envelope("phone_number_quality_update", {
        "display_phone_number": NUMBER["display_phone_number"], "event": "FLAGGED", "current_limit": "TIER_250"}))
    _process_all(db_session)
    row = db_session.get(WhatsAppNumber, number["id"])
    db_session.refresh(row)
    assert (row.status, row.quality_rating, row.messaging_limit_tier) == (NumberStatus.flagged, "RED", "TIER_250")
    sync = db_session.execute(select(Job).where(Job.kind == "numbers.sync")).scalar_one()
    assert sync.params == {"number_id": number["id"]}


def test_message_changes_are_handed_to_the_inbound_pipeline(client, db_session, number):
    from shared.models import Message

    post_webhook(client, message_payload())
    _process_all(db_session)
    event = db_session.execute(select(WebhookEvent)).scalar_one()
    db_session.refresh(event)
    assert event.status == WebhookEventStatus.processed
    assert event.has_messages and event.messages_processed_at is not None
    assert db_session.execute(select(Message.content)).scalar_one() == {"body": "hello"}


def test_a_secret_rotated_by_another_process_is_honoured_at_once(client, db_session, number):
    assert post_webhook(client, message_payload("before")).status_code == 200  # the route is cached now
    row = db_session.get(WhatsAppNumber, number["id"])
    row.app_secret_encrypted = crypto.encrypt("rotated-secret-456")  # as another web process would
    db_session.flush()
    assert post_webhook(client, message_payload("after"), secret="rotated-secret-456").status_code == 200
    assert post_webhook(client, message_payload("old secret"), secret=SECRET).status_code == 401


def _messages_value(phone_number_id, display, text_body):
    return {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": display, "phone_number_id": phone_number_id},
        "contacts": [{"profile": {"name": "Mallory"}, "wa_id": "16505559999"}],
        "messages": [{"from": "16505559999", "id": f"wamid.forged-{phone_number_id}", "timestamp": "1749416383",
                      "type": "text", "text": {"body": text_body}}],
    }


def test_a_body_signed_by_one_tenant_cannot_write_into_another(client, db_session, login, number, published):
    """Org B's secret signs a body that also names org A's number: refused whole, nothing stored for anyone."""
    from shared.models import Message

    other = make_org(db_session)
    headers = login(make_user(db_session, other, role="org_admin"))
    other_number = {**NUMBER, "waba_id": "200000000000001", "phone_number_id": "200000000000002",
                    "display_phone_number": "15550001111", "app_secret": "org-b-own-secret-987",
                    "verify_token": "org-b-verify"}
    assert client.post("/api/v1/numbers", json=other_number, headers=headers).status_code == 201
    forged = {"object": "whatsapp_business_account", "entry": [
        {"id": other_number["waba_id"], "changes": [{"field": "messages", "value": _messages_value(
            other_number["phone_number_id"], other_number["display_phone_number"], "mine")}]},
        {"id": NUMBER["waba_id"], "changes": [{"field": "messages", "value": _messages_value(
            NUMBER["phone_number_id"], NUMBER["display_phone_number"], "forged into org A")}]},
    ]}
    for secret in ("org-b-own-secret-987", SECRET):  # signed by either tenant alone
        response = post_webhook(client, forged, secret=secret)
        assert (response.status_code, response.get_json()["code"]) == (401, "invalid_signature")
    assert db_session.execute(select(WebhookEvent)).scalars().all() == []
    assert published == []
    _process_all(db_session)
    assert db_session.execute(select(Message)).scalars().all() == []

    # Each tenant's own payload, signed with its own secret, still goes through.
    own = {"object": "whatsapp_business_account", "entry": [forged["entry"][0]]}
    assert post_webhook(client, own, secret="org-b-own-secret-987").status_code == 200
    stored = db_session.execute(select(WebhookEvent)).scalar_one()
    assert stored.phone_number_ids == [other_number["phone_number_id"]]
    assert stored.organization_id == other.id


# -- the intake's own layer ahead of Flask (web/intake.py) ------------------------------------------------------


def test_the_intake_answers_in_the_api_shape_with_the_callers_request_id(client, db_session, number, published):
    body = json.dumps(message_payload("with an id")).encode()
    headers = {"Content-Type": "application/json", "X-Request-ID": "meta-delivery-42"}
    stored = client.post("/api/v1/webhooks/whatsapp", data=body, headers={**headers, "X-Hub-Signature-256": sign(body, SECRET)})
    assert (stored.status_code, stored.get_json(), stored.headers["X-Request-ID"]) == (
        200, {"status": "received"}, "meta-delivery-42")
    refused = client.post("/api/v1/webhooks/whatsapp", data=body, headers={**headers, "X-Hub-Signature-256": "sha256=00"})
    assert refused.status_code == 401
    assert refused.get_json() == {"code": "invalid_signature", "message": refused.get_json()["message"],
                                  "details": {}, "request_id": "meta-delivery-42"}
    generated = client.post("/api/v1/webhooks/whatsapp", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET), "X-Request-ID": "bad id!"})
    assert generated.get_json() == {"status": "duplicate"} and generated.headers["X-Request-ID"] != "bad id!"


def test_a_delivery_without_content_length_is_stored_by_the_flask_view(client, db_session, number, published):
    body = json.dumps(message_payload("chunked")).encode()
    environ = EnvironBuilder(path="/api/v1/webhooks/whatsapp", method="POST", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, SECRET)}).get_environ()
    del environ["CONTENT_LENGTH"]  # chunked, as a server passes it on: the stream ends where the body does
    environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    answer, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    assert (status, json.loads(b"".join(answer))) == ("200 OK", {"status": "received"})
    assert db_session.execute(select(WebhookEvent.body)).scalar_one() == body


def test_a_body_over_the_limit_is_refused_before_it_is_read(client, db_session, migrated, published):
    response = client.post("/api/v1/webhooks/whatsapp", data=b"x" * (migrated.max_request_bytes + 1),
                           headers={"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00"})
    assert (response.status_code, response.get_json()["code"]) == (413, "payload_too_large")
    assert db_session.execute(select(WebhookEvent)).first() is None


def test_a_storage_failure_is_a_500_in_the_error_shape_and_meta_retries(client, db_session, number, published,
                                                                         monkeypatch):
    def broken(rows):
        raise RuntimeError("disk full")

    monkeypatch.setattr(webhooks._intake_commits, "_write", broken)
    response = post_webhook(client, message_payload("lost?"))
    assert response.status_code == 500
    assert response.get_json()["code"] == "internal_error" and "disk full" not in response.get_data(as_text=True)
    monkeypatch.undo()
    assert post_webhook(client, message_payload("lost?")).get_json() == {"status": "received"}  # Meta's retry lands


def test_one_body_twice_in_one_batch_is_stored_once(db_session, number, published):
    row = webhooks._IntakeRow(body=json.dumps(message_payload("twice")).encode(), organization_id=None,
                              phone_number_ids=[NUMBER["phone_number_id"]], fields=["messages"],
                              status=WebhookEventStatus.received)
    first, second = webhooks._insert_events([row, row])
    assert first is not None and second is None
    assert db_session.execute(select(WebhookEvent.id)).scalars().all() == [first]


def test_a_signed_delivery_the_strict_parse_refuses_is_stored_then_failed_with_the_reason(client, db_session, number,
                                                                                         published):
    payload = message_payload("no id")
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    assert post_webhook(client, payload).get_json() == {"status": "received"}  # kept: Meta never sends it again
    not_a_webhook = {"object": "page", "entry": []}
    assert post_webhook(client, not_a_webhook).get_json() == {"status": "received"}
    assert _process_all(db_session) == [True, False]
    failed, unroutable = db_session.execute(select(WebhookEvent).order_by(WebhookEvent.sequence)).scalars().all()
    assert failed.status == WebhookEventStatus.failed and "messages[0].id: missing" in failed.error
    assert unroutable.status == WebhookEventStatus.unroutable and unroutable.fields == []


def test_a_quality_update_processed_twice_starts_one_sync(client, db_session, number, published):
    update = {"display_phone_number": NUMBER["display_phone_number"], "event": "DOWNGRADE", "current_limit": "TIER_1K"}
    post_webhook(client, envelope("phone_number_quality_update", update))
    post_webhook(client, {**envelope("phone_number_quality_update", update), "again": True})  # new bytes, same update
    _process_all(db_session)
    syncs = db_session.execute(select(Job).where(Job.kind == "numbers.sync")).scalars().all()
    assert len(syncs) == 1
    syncs[0].status = JobStatus.succeeded  # done: the next update reads Graph again
    db_session.flush()
    post_webhook(client, envelope("phone_number_quality_update", {**update, "event": "UPGRADE"}))
    _process_all(db_session)
    assert len(db_session.execute(select(Job).where(Job.kind == "numbers.sync")).scalars().all()) == 2
