"""The conversations pipeline in-process: inbound handling, statuses, the inbox API and the send steps."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from shared.db import unit_of_work
from shared.models import (
    Availability,
    ConsentState,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    Message,
    MessageStatus,
    MessageTemplate,
    SubscriptionStatus,
    WebhookEvent,
)
from shared.models.base import utcnow
from shared.queueing.names import ASSIGN_WAITING, DISPATCH_NUMBER, FETCH_MEDIA
from shared.services import messages, send_outcomes, sending, webhooks
from tests.factories import make_department, make_user
from tests.unit.test_whatsapp_channel import NUMBER, envelope, post_webhook

_wamids = itertools.count(1)
CUSTOMER = "16505551234"


def inbound(*items, wa_id=CUSTOMER, name="Sheena"):
    """A `messages` webhook with these message objects (ids and timestamps filled in)."""
    now = int(utcnow().timestamp())
    return envelope("messages", {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": NUMBER["display_phone_number"], "phone_number_id": NUMBER["phone_number_id"]},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": f"wamid.unit-{next(_wamids)}", "timestamp": str(now), **item}
                     for item in items],
    })


def statuses(*items):
    return envelope("messages", {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": NUMBER["display_phone_number"], "phone_number_id": NUMBER["phone_number_id"]},
        "statuses": [{"recipient_id": CUSTOMER, "timestamp": str(int(utcnow().timestamp())), **item} for item in items],
    })


def text(body):
    return {"type": "text", "text": {"body": body}}


@pytest.fixture
def number(client, admin_headers):
    response = client.post("/api/v1/numbers", json=NUMBER, headers=admin_headers)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


@pytest.fixture
def deliver(client, db_session, number):
    """deliver(payload): POST it signed, then process every stored payload, as the webhooks pool would."""

    def run(payload):
        response = post_webhook(client, payload)
        assert response.status_code == 200
        for event_id in db_session.execute(select(WebhookEvent.id)).scalars().all():
            with unit_of_work() as session:  # its own unit of work: publishes fire on its commit
                webhooks.process_event(session, event_id=event_id)
        db_session.expire_all()

    return run


@pytest.fixture
def agent(db_session, organization):
    return make_user(db_session, organization, role="agent", availability=Availability.online,
                     max_open_conversations=1)


def the_conversation(db_session) -> Conversation:
    return db_session.execute(select(Conversation)).scalar_one()


def inbound_messages(db_session) -> list[Message]:
    return list(db_session.execute(
        select(Message).where(Message.direction == Direction.inbound).order_by(Message.sequence)).scalars())


def test_a_first_message_creates_the_contact_and_an_assigned_conversation(deliver, db_session, agent, published):
    deliver(inbound(text("Hi there"), {"type": "image", "image": {"id": "media-1", "mime_type": "image/jpeg"}}))
    conversation = the_conversation(db_session)
    contact = db_session.get(Contact, conversation.contact_id)
    assert (contact.wa_id, contact.phone_e164, contact.profile_name) == (CUSTOMER, "+16505551234", "Sheena")
    assert contact.messages_in_count == 2 and contact.last_inbound_at is not None
    assert conversation.assigned_agent_id == agent.id and conversation.owner.value == "agent"
    assert conversation.unread_count == 2 and conversation.messages_in_count == 2
    assert conversation.last_message_preview == "[image]"
    assert conversation.window_expires_at > utcnow() + dt.timedelta(hours=23, minutes=59)
    image = inbound_messages(db_session)[1]
    assert image.media_id == "media-1" and image.media_key is None  # stored first, fetched by its own task
    assert (FETCH_MEDIA, {"message_id": str(image.id), "org_id": str(conversation.organization_id)}) in published


def test_the_same_wamid_twice_is_stored_and_routed_once(deliver, db_session, agent):
    payload = inbound(text("Only once"))
    deliver(payload)
    again = envelope("messages", {**payload["entry"][0]["changes"][0]["value"], "statuses": []})  # other bytes
    deliver(again)
    assert [m.content["body"] for m in inbound_messages(db_session)] == ["Only once"]
    assert the_conversation(db_session).messages_in_count == 1


def test_a_closed_conversation_reopens_on_a_new_message(deliver, db_session, client, admin_headers):
    deliver(inbound(text("First")))
    conversation = the_conversation(db_session)
    assert client.post(f"/api/v1/conversations/{conversation.id}/close", headers=admin_headers).status_code == 200
    db_session.expire_all()
    assert the_conversation(db_session).status == ConversationStatus.closed
    deliver(inbound(text("Me again")))
    reopened = the_conversation(db_session)
    assert reopened.id == conversation.id and reopened.status == ConversationStatus.open
    assert reopened.resolved_at is None


def test_a_blocked_contacts_messages_are_stored_but_not_routed(deliver, db_session, agent):
    deliver(inbound(text("Hello")))
    conversation = the_conversation(db_session)
    conversation.assigned_agent_id = None
    db_session.get(Contact, conversation.contact_id).blocked_at = utcnow()
    db_session.flush()
    deliver(inbound(text("Are you there?")))
    assert [m.content["body"] for m in inbound_messages(db_session)] == ["Hello", "Are you there?"]
    assert the_conversation(db_session).assigned_agent_id is None


@pytest.mark.parametrize("word,state", [("STOP", ConsentState.opted_out), (" parar ", ConsentState.opted_out),
                                        ("Cancelar", ConsentState.opted_out), ("START", ConsentState.opted_in)])
def test_keywords_change_consent_and_queue_a_confirmation(deliver, db_session, published, word, state):
    deliver(inbound(text(word)))
    contact = db_session.execute(select(Contact)).scalar_one()
    assert contact.marketing_consent == state and contact.utility_consent == state
    [reply] = db_session.execute(select(Message).where(Message.direction == Direction.outbound)).scalars()
    assert reply.sender_type.value == "system" and reply.status == MessageStatus.queued
    assert _armed(published) == [(str(reply.number_id), str(contact.organization_id))]


def test_keywords_are_configurable_per_organization(deliver, db_session, organization):
    organization.settings = {"opt_out_keywords": ["BASTA"]}
    db_session.flush()
    deliver(inbound(text("stop")))
    assert db_session.execute(select(Contact)).scalar_one().marketing_consent == ConsentState.unknown
    deliver(inbound(text("basta")))
    assert db_session.execute(select(Contact)).scalar_one().marketing_consent == ConsentState.opted_out


def _confirmations(db_session) -> list[str]:
    replies = db_session.execute(select(Message).where(Message.direction == Direction.outbound)
                                 .order_by(Message.sequence)).scalars()
    return [reply.content["body"] for reply in replies if reply.sender_type.value == "system"]


def _set_organization(client, admin_headers, organization, **changes):
    response = client.patch(f"/api/v1/organizations/{organization.id}", json=changes, headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("language,words,opted_out,opted_in", [
    ("pt-BR", ("PARAR", "VOLTAR"), "Você não receberá mais mensagens nossas. Responda VOLTAR para recebê-las novamente.",
     "Você voltará a receber nossas mensagens. Responda PARAR para deixar de recebê-las a qualquer momento."),
    ("es", ("BAJA", "ALTA"), "Ya no recibirás mensajes nuestros. Responde ALTA para volver a recibirlos.",
     "Volverás a recibir nuestros mensajes. Responde BAJA para dejar de recibirlos en cualquier momento."),
])
def test_keyword_confirmations_go_out_in_the_organizations_language(deliver, db_session, client, admin_headers,
                                                                     organization, language, words, opted_out,
                                                                     opted_in):
    assert _set_organization(client, admin_headers, organization, language=language)["language"] == language
    deliver(inbound(text(words[0])))
    assert db_session.execute(select(Contact)).scalar_one().marketing_consent == ConsentState.opted_out
    deliver(inbound(text(words[1])))
    assert db_session.execute(select(Contact)).scalar_one().marketing_consent == ConsentState.opted_in
    assert _confirmations(db_session) == [opted_out, opted_in]


def test_keyword_confirmations_are_english_by_default_whatever_language_the_keyword(
        deliver, db_session, client, admin_headers, organization):
    assert client.get(f"/api/v1/organizations/{organization.id}", headers=admin_headers).get_json()["language"] == "en"
    deliver(inbound(text("parar")))  # a Brazilian customer of an English-speaking organization
    deliver(inbound(text("Start")))
    assert _confirmations(db_session) == [
        "You will no longer receive messages from us. Reply START to receive them again.",
        "You will receive our messages again. Reply STOP to stop them at any time.",
    ]


def test_an_organizations_own_confirmation_replaces_its_languages_default(deliver, db_session, client,
                                                                          admin_headers, organization):
    _set_organization(client, admin_headers, organization, language="pt-BR",
                      settings={"opt_out_reply": "Pronto, a Acme não escreve mais. VOLTAR desfaz."})
    deliver(inbound(text("SAIR")))
    deliver(inbound(text("VOLTAR")))  # no text of its own for this one: pt-BR's default
    assert _confirmations(db_session) == [
        "Pronto, a Acme não escreve mais. VOLTAR desfaz.",
        "Você voltará a receber nossas mensagens. Responda PARAR para deixar de recebê-las a qualquer momento.",
    ]


def test_agents_at_capacity_leave_conversations_waiting_until_one_frees(deliver, db_session, agent, client, login,
                                                                       published):
    deliver(inbound(text("one"), wa_id="16505550001"))
    deliver(inbound(text("two"), wa_id="16505550002"))
    first, second = db_session.execute(select(Conversation).order_by(Conversation.created_at)).scalars().all()
    assert first.assigned_agent_id == agent.id
    assert second.assigned_agent_id is None and second.waiting_since is not None  # capacity 1
    response = client.post(f"/api/v1/conversations/{first.id}/close", headers=login(agent))
    assert response.status_code == 200
    assert (ASSIGN_WAITING, {"org_id": str(first.organization_id)}) in published
    from workers.tasks.webhooks import assign_waiting

    assign_waiting(org_id=str(first.organization_id))
    db_session.expire_all()
    assert db_session.get(Conversation, second.id).assigned_agent_id == agent.id


def _armed(published):
    """The dispatchers armed: (number id, org id) of each `sends.dispatch_number` published."""
    return [(kwargs["number_id"], kwargs["org_id"]) for name, kwargs in published if name == DISPATCH_NUMBER]


def _reply(client, conversation, headers, body="Thanks!", **extra):
    return client.post(f"/api/v1/conversations/{conversation.id}/messages", json=text(body),
                       headers={**headers, **extra})


def sent_reply(db_session, client, headers, wamid, body="Thanks!") -> Message:
    """A reply in the (one) conversation, as if the sends pool had sent it and Meta called it `wamid`."""
    message = db_session.get(Message, _reply(client, the_conversation(db_session), headers, body).get_json()["id"])
    message.status, message.wamid = MessageStatus.sent, wamid
    db_session.flush()
    return message


def test_a_reply_is_queued_and_the_same_idempotency_key_returns_the_same_message(deliver, db_session, client, login,
                                                                                   agent, published):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    first = _reply(client, conversation, login(agent), **{"Idempotency-Key": "reply-1"})
    assert first.status_code == 202 and first.get_json()["status"] == "queued"
    second = _reply(client, conversation, login(agent), **{"Idempotency-Key": "reply-1"})
    assert second.status_code == 202 and second.get_json()["id"] == first.get_json()["id"]
    assert len(_armed(published)) == 1  # one dispatcher for the number, one message
    other = _reply(client, conversation, login(agent), body="Something else", **{"Idempotency-Key": "reply-1"})
    assert (other.status_code, other.get_json()["code"]) == (422, "idempotency_key_reused")
    assert other.get_json()["details"] == {"message_id": first.get_json()["id"]}
    outbound = db_session.execute(select(Message).where(Message.direction == Direction.outbound)).scalars().all()
    assert [m.content["body"] for m in outbound] == ["Thanks!"]  # the first, only


def test_free_form_outside_the_window_is_refused_naming_the_templates(deliver, db_session, client, admin_headers,
                                                                      organization):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    conversation.window_expires_at = utcnow() - dt.timedelta(seconds=1)
    db_session.add(MessageTemplate(organization_id=organization.id, waba_id=NUMBER["waba_id"], name="follow_up",
                                   language="en_US", category="UTILITY", status="APPROVED",
                                   components=[{"type": "BODY", "text": "Hello again"}]))
    db_session.add(MessageTemplate(organization_id=organization.id, waba_id=NUMBER["waba_id"], name="draft_one",
                                   language="en_US", category="UTILITY", status="PENDING",
                                   components=[{"type": "BODY", "text": "Not yet"}]))
    db_session.flush()
    response = _reply(client, conversation, admin_headers)
    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == "window_closed"
    assert [t["name"] for t in body["details"]["templates"]] == ["follow_up"]
    assert db_session.execute(select(Message).where(Message.direction == Direction.outbound)).first() is None


def test_the_window_is_checked_again_at_send_time(deliver, db_session, client, admin_headers):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    message_id = _reply(client, conversation, admin_headers).get_json()["id"]
    conversation.window_expires_at = utcnow() - dt.timedelta(seconds=1)  # it closed while the message waited
    db_session.flush()
    batch = sending.claim_batch(db_session, number_id=conversation.number_id)
    assert batch.items == []
    db_session.expire_all()
    failed = db_session.get(Message, message_id)
    assert (failed.status, failed.error_code) == (MessageStatus.failed, "window_closed")


def test_an_expired_trial_refuses_sends(deliver, db_session, client, admin_headers, organization):
    deliver(inbound(text("Hi")))
    organization.subscription_status = SubscriptionStatus.expired
    db_session.flush()
    response = _reply(client, the_conversation(db_session), admin_headers)
    assert response.status_code == 403 and response.get_json()["code"] == "trial_expired"


def test_a_message_not_yet_due_is_not_sent(deliver, db_session, client, admin_headers):
    deliver(inbound(text("Hi")))
    message_id = _reply(client, the_conversation(db_session), admin_headers).get_json()["id"]
    db_session.get(Message, message_id).next_attempt_at = utcnow() + dt.timedelta(seconds=30)
    db_session.flush()
    number_id = db_session.get(Message, message_id).number_id
    assert sending.claim_batch(db_session, number_id=number_id).items == []
    assert 25 < sending.next_attempt_in(db_session, number_id=number_id) <= 30


def _sent_message(deliver, db_session, client, admin_headers, wamid):
    deliver(inbound(text("Hi")))
    message_id = _reply(client, the_conversation(db_session), admin_headers).get_json()["id"]
    assert sending.claim_send(db_session, message_id=db_session.get(Message, message_id).id)
    send_outcomes.record_sent(db_session, message_id=db_session.get(Message, message_id).id, wamid=wamid)
    return message_id


def test_statuses_move_forward_only_and_a_late_delivered_changes_nothing(deliver, db_session, client, admin_headers):
    message_id = _sent_message(deliver, db_session, client, admin_headers, "wamid.out-1")
    deliver(statuses({"id": "wamid.out-1", "status": "read"}))
    deliver(statuses({"id": "wamid.out-1", "status": "delivered"}))
    deliver(statuses({"id": "wamid.out-1", "status": "failed", "errors": [{"code": 131026, "title": "x"}]}))
    message = db_session.get(Message, message_id)
    assert message.status == MessageStatus.read and message.delivered_at is not None and message.error_code is None
    assert the_conversation(db_session).messages_out_count == 1


def test_a_failed_status_records_metas_code(deliver, db_session, client, admin_headers):
    message_id = _sent_message(deliver, db_session, client, admin_headers, "wamid.out-2")
    deliver(statuses({"id": "wamid.out-2", "status": "failed",
                      "errors": [{"code": 131026, "title": "Message undeliverable",
                                  "error_data": {"details": "Not on WhatsApp"}}]}))
    message = db_session.get(Message, message_id)
    assert (message.status, message.error_code, message.error_message) == (MessageStatus.failed, "131026",
                                                                           "Not on WhatsApp")


def test_a_status_for_an_unknown_wamid_is_matched_by_our_callback_data(deliver, db_session, client, admin_headers):
    deliver(inbound(text("Hi")))
    message_id = _reply(client, the_conversation(db_session), admin_headers).get_json()["id"]
    assert sending.claim_send(db_session, message_id=db_session.get(Message, message_id).id)
    send_outcomes.mark_unknown(db_session, message_id=db_session.get(Message, message_id).id, reason="read timeout")
    deliver(statuses({"id": "wamid.settles-it", "status": "delivered",
                      "biz_opaque_callback_data": messages.callback_data(message_id)},
                     {"id": "wamid.nobody-knows", "status": "delivered"}))
    message = db_session.get(Message, message_id)
    assert (message.status, message.wamid) == (MessageStatus.delivered, "wamid.settles-it")


def test_the_inbox_lists_filters_and_hides_other_agents_conversations(deliver, db_session, client, login, agent,
                                                                      organization, admin_headers):
    deliver(inbound(text("mine"), wa_id="16505550011"))
    deliver(inbound(text("theirs"), wa_id="16505550012"))
    mine, theirs = db_session.execute(select(Conversation).order_by(Conversation.created_at)).scalars().all()
    other = make_user(db_session, organization, role="agent")
    department = make_department(db_session, organization, name="Billing")
    theirs.assigned_agent_id, theirs.department_id = other.id, department.id
    db_session.flush()

    listed = client.get("/api/v1/conversations/", headers=login(agent)).get_json()["items"]
    assert [c["id"] for c in listed] == [str(mine.id)]
    assert client.get(f"/api/v1/conversations/{theirs.id}", headers=login(agent)).status_code == 404
    their_message = db_session.execute(select(Message.id).where(Message.conversation_id == theirs.id)).scalar_one()
    assert client.get(f"/api/v1/messages/{their_message}", headers=login(agent)).status_code == 404
    assert client.get(f"/api/v1/messages/{their_message}", headers=admin_headers).status_code == 200
    everything = client.get("/api/v1/conversations/?has_unread=true", headers=admin_headers).get_json()["items"]
    assert {c["id"] for c in everything} == {str(mine.id), str(theirs.id)}
    unassigned = client.get(f"/api/v1/conversations/?assigned_agent_id={other.id}", headers=admin_headers)
    assert [c["id"] for c in unassigned.get_json()["items"]] == [str(theirs.id)]
    page = client.get("/api/v1/conversations/?limit=1", headers=admin_headers).get_json()
    rest = client.get(f"/api/v1/conversations/?limit=1&cursor={page['next_cursor']}", headers=admin_headers).get_json()
    assert {page["items"][0]["id"], rest["items"][0]["id"]} == {str(mine.id), str(theirs.id)}


def test_mark_read_zeroes_unread_and_sends_the_receipt_for_the_last_inbound(deliver, db_session, client,
                                                                           admin_headers, published):
    deliver(inbound(text("one"), text("two")))
    conversation = the_conversation(db_session)
    response = client.post(f"/api/v1/conversations/{conversation.id}/read", headers=admin_headers)
    assert response.status_code == 202 and response.get_json()["unread_count"] == 0
    last = inbound_messages(db_session)[-1]
    assert ("sends.mark_read", {"conversation_id": str(conversation.id), "message_id": str(last.id),
                                "org_id": str(conversation.organization_id)}) in published


def test_a_direct_message_to_a_new_phone_creates_the_contact_and_is_refused_without_a_window(
    client, db_session, number, admin_headers
):
    response = client.post("/api/v1/messages/", headers=admin_headers,
                           json={"number_id": number["id"], "to": "+44 7911 123456", **text("Hello")})
    assert response.status_code == 409 and response.get_json()["code"] == "window_closed"
    bad = client.post("/api/v1/messages/", headers=admin_headers,
                      json={"number_id": number["id"], "to": "12", **text("Hello")})
    assert bad.status_code == 422 and bad.get_json()["code"] == "invalid_phone"


def test_invalid_message_bodies_are_a_clear_422(deliver, db_session, client, admin_headers):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    url = f"/api/v1/conversations/{conversation.id}/messages"
    too_many = {"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"}, "action": {
        "buttons": [{"type": "reply", "reply": {"id": str(i), "title": f"B{i}"}} for i in range(4)]}}}
    response = client.post(url, json=too_many, headers=admin_headers)
    assert response.status_code == 422 and "3 buttons" in response.get_json()["message"]
    missing = client.post(url, json={"type": "image"}, headers=admin_headers)
    assert missing.status_code == 422



def test_an_upload_of_the_wrong_type_for_the_message_is_refused(deliver, db_session, client, admin_headers):
    import io

    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    uploaded = client.post("/api/v1/media", headers=admin_headers, content_type="multipart/form-data",
                           data={"file": (io.BytesIO(b"%PDF-1.4 tiny"), "terms.pdf", "application/pdf")})
    assert uploaded.status_code == 201, uploaded.get_json()
    key = uploaded.get_json()["upload"]
    as_image = client.post(f"/api/v1/conversations/{conversation.id}/messages", headers=admin_headers,
                           json={"type": "image", "image": {"upload": key}})
    assert as_image.status_code == 422 and as_image.get_json()["code"] == "invalid_media"
    as_document = client.post(f"/api/v1/conversations/{conversation.id}/messages", headers=admin_headers,
                              json={"type": "document", "document": {"upload": key, "filename": "terms.pdf"}})
    assert as_document.status_code == 202
    assert as_document.get_json()["content"] == {"upload": key, "filename": "terms.pdf"}
    someone_elses = client.post(f"/api/v1/conversations/{conversation.id}/messages", headers=admin_headers,
                                json={"type": "document", "document": {"upload": "uploads/other-org/x.pdf"}})
    assert someone_elses.status_code == 422


def test_the_plans_monthly_message_limit_holds(deliver, db_session, client, admin_headers, organization):
    from shared.models import Plan

    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    db_session.get(Plan, db_session.execute(select(Plan.id).where(Plan.code == "free")).scalar_one()
                   ).max_monthly_messages = 1
    organization.plan_code = "free"
    db_session.flush()
    db_session.expire(organization)
    assert _reply(client, conversation, admin_headers).status_code == 202
    over = _reply(client, conversation, admin_headers, body="one more")
    assert over.status_code == 403 and over.get_json()["code"] == "plan_limit_exceeded"
    assert over.get_json()["details"]["limit"] == 1
    usage = client.get(f"/api/v1/organizations/{organization.id}/usage", headers=admin_headers).get_json()
    assert usage["resources"]["monthly_messages"] == {"used": 1, "limit": 1, "remaining": 0, "counted": True}


def test_the_messages_of_one_batched_webhook_are_listed_in_arrival_order(deliver, db_session, client, admin_headers):
    bodies = [f"part {i}" for i in range(12)]  # one transaction: every created_at is the same
    deliver(inbound(*[text(body) for body in bodies]))
    conversation = the_conversation(db_session)
    assert conversation.messages_in_count == 12 and conversation.unread_count == 12
    url = f"/api/v1/conversations/{conversation.id}/messages"
    first = client.get(url, query_string={"limit": 5}, headers=admin_headers).get_json()
    rest = client.get(url, query_string={"limit": 50, "cursor": first["next_cursor"]}, headers=admin_headers).get_json()
    listed = [item["content"]["body"] for item in first["items"] + rest["items"]]
    assert listed == list(reversed(bodies))  # newest first, every message once, across pages
    bad = client.get(url, query_string={"cursor": "not-a-cursor"}, headers=admin_headers)
    assert bad.status_code == 422


def test_a_batch_with_a_repeated_message_stores_it_once_and_counts_it_once(deliver, db_session):
    payload = inbound(text("Once"), text("Twice?"))
    messages_ = payload["entry"][0]["changes"][0]["value"]["messages"]
    messages_.append(dict(messages_[0]))  # Meta's redelivery inside a later batch: same wamid
    deliver(payload)
    assert [m.content["body"] for m in inbound_messages(db_session)] == ["Once", "Twice?"]
    assert the_conversation(db_session).messages_in_count == 2


def test_a_backlog_of_large_batches_drains_completely_in_arrival_order(client, number, db_session, monkeypatch):
    # 100 webhooks of 50 messages: 5,000 messages, once more than one INSERT's 65,535 parameters allow.
    monkeypatch.setattr(webhooks, "DRAIN_MAX_ITEMS", 1000)
    for webhook in range(100):
        payload = inbound(*[text(f"{webhook}-{n}") for n in range(50)], wa_id=f"1650555{webhook % 7:04d}")
        assert post_webhook(client, payload).status_code == 200
    batches = []
    while True:
        with unit_of_work() as session:
            taken = webhooks.drain_batch(session, max_items=webhooks.DRAIN_MAX_ITEMS)
        if not taken:
            break
        batches.append(taken)
    assert batches == [20] * 5  # 1,000 messages per transaction, every row taken once
    stored = inbound_messages(db_session)
    assert len(stored) == 5000
    for customer in range(7):  # arrival order within each conversation (the order the inbox lists them in)
        contact_id = db_session.execute(select(Contact.id).where(Contact.wa_id == f"1650555{customer:04d}")).scalar_one()
        mine = [m.content["body"] for m in stored if m.contact_id == contact_id]
        assert mine == [f"{webhook}-{n}" for webhook in range(customer, 100, 7) for n in range(50)]
    waiting = db_session.execute(select(WebhookEvent).where(WebhookEvent.status != "processed")).scalars().all()
    assert waiting == []


def test_a_department_transfer_hands_the_conversation_to_its_agents_not_the_old_one(deliver, db_session, client,
                                                                                   agent, organization, admin_headers):
    from shared.models import department_members

    deliver(inbound(text("I need my invoice")))
    conversation = the_conversation(db_session)
    assert conversation.assigned_agent_id == agent.id  # first message: auto-assigned; the agent is in no department
    billing, finance = make_department(db_session, organization, name="Billing"), make_department(
        db_session, organization, name="Finance")
    clerk = make_user(db_session, organization, role="agent", availability=Availability.online,
                      max_open_conversations=5)
    db_session.execute(department_members.insert(), [{"department_id": billing.id, "user_id": clerk.id},
                                                     {"department_id": finance.id, "user_id": clerk.id}])
    db_session.flush()

    def move_to(department):
        response = client.post(f"/api/v1/conversations/{conversation.id}/assign",
                               json={"department_id": str(department.id)}, headers=admin_headers)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    moved = move_to(billing)
    assert (moved["department_id"], moved["assigned_agent_id"]) == (str(billing.id), str(clerk.id))
    kept = move_to(finance)  # the clerk is in Finance too: it stays theirs
    assert (kept["department_id"], kept["assigned_agent_id"]) == (str(finance.id), str(clerk.id))
