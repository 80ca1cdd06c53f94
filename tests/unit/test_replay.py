"""Replay: Meta repeats webhooks and delivers them out of order (reference §6), and a retried delivery need not
carry the same bytes. One story for one number, delivered once in order to one organization and three times,
shuffled and re-serialized, to another, must leave both organizations in the same state."""

from __future__ import annotations

import copy
import json
import random
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from shared.db import unit_of_work
from shared.models import (
    Alert,
    ConsentEvent,
    Contact,
    Conversation,
    Job,
    JobStatus,
    Message,
    MessageTemplate,
    Organization,
    WebhookEvent,
    WebhookEventStatus,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.services import send_outcomes, sending, webhooks
from shared.whatsapp.signatures import sign
from tests.factories import make_org, make_user
from tests.unit.test_whatsapp_channel import NUMBER, envelope, post_webhook

# Fixed shuffles. Seed 5's happens to deliver START before STOP, the removal of a reaction before the reaction,
# `failed` before `sent` and a customer's older message after a newer one; seed 8's delivers the message from a
# changed number's new number before Meta's notice and one from its old number after it (two contacts to merge),
# so no order-dependent path is left out.
SEEDS = (5, 8, 10)
COPIES = 3
# The story took place an hour ago and reaches us now (Meta retries for days): Meta's times are all in the past,
# so each status's own time, not the moment the test recorded the send, is what the message keeps.
STORY_AGE_SECONDS = 3600

ANA, BRUNO, CARLA, DIANA = "16505550101", "16505550102", "16505550103", "16505550104"
EDU_OLD, EDU_NEW = "16505550105", "16505550195"  # a customer who changes number during the story
NAMES = {ANA: "Ana", BRUNO: "Bruno", CARLA: "Carla", DIANA: "Diana", EDU_OLD: "Edu", EDU_NEW: "Edu"}
SECOND_NUMBER = {
    "waba_id": "102290129340777", "phone_number_id": "106540352247777", "display_phone_number": "15550787777",
    "access_token": "EAAG-second-tenant-token-777", "app_secret": "second-tenant-app-secret-777",
    "verify_token": "verify-the-second-one",
}
HELPED = {"type": "interactive", "interactive": {
    "type": "button", "body": {"text": "Did that answer your question?"},
    "action": {"buttons": [{"type": "reply", "reply": {"id": "helped-yes", "title": "Yes"}},
                           {"type": "reply", "reply": {"id": "helped-no", "title": "No"}}]}}}
REPLIES = {"out-1": (ANA, {"type": "text", "text": {"body": "It ships today"}}),
           "out-2": (BRUNO, HELPED),
           "out-3": (CARLA, {"type": "text", "text": {"body": "Your refund is on its way"}})}


@dataclass(frozen=True)
class Tenant:
    """One organization, its number and the ids the story uses for it (wamids are unique across Meta)."""

    org: Organization
    headers: dict[str, str]
    number: dict[str, str]
    tag: str
    t0: int

    def wamid(self, name: str) -> str:
        return f"wamid.{self.tag}.{name}"

    def at(self, offset: int) -> str:
        return str(self.t0 + offset)

    @property
    def template_id(self) -> str:
        return f"{self.number['waba_id']}01"


# -- the story, as Meta sends it ----------------------------------------------------------------------------


def _messages_change(tenant: Tenant, *, messages=(), statuses=(), profile_of: str | None = None) -> dict:
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": {
        "display_phone_number": tenant.number["display_phone_number"],
        "phone_number_id": tenant.number["phone_number_id"]}}
    if profile_of:  # Meta's system notices carry no `contacts`
        value["contacts"] = [{"profile": {"name": NAMES[profile_of]}, "wa_id": profile_of}]
    if messages:
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return envelope("messages", value, waba_id=tenant.number["waba_id"])


def _from(tenant: Tenant, wa_id: str, name: str, offset: int, **body) -> dict:
    message = {"from": wa_id, "id": tenant.wamid(name), "timestamp": tenant.at(offset), **body}
    return _messages_change(tenant, messages=[message], profile_of=wa_id)


def _text(tenant: Tenant, wa_id: str, name: str, offset: int, body: str, **extra) -> dict:
    return _from(tenant, wa_id, name, offset, type="text", text={"body": body}, **extra)


def _status(tenant: Tenant, reply: str, status: str, offset: int, **extra) -> dict:
    wa_id = REPLIES[reply][0]
    return _messages_change(tenant, statuses=[{"id": tenant.wamid(reply), "status": status, "recipient_id": wa_id,
                                               "timestamp": tenant.at(offset), **extra}])


def _billing(tenant: Tenant, reply: str, *, first: bool) -> dict:
    conversation: dict[str, Any] = {"id": f"conv-{tenant.tag}-{reply}", "origin": {"type": "service"}}
    if first:  # Meta names the expiry on a conversation's first status only
        conversation["expiration_timestamp"] = tenant.at(86400)
    return {"conversation": conversation, "pricing": {"billable": False, "pricing_model": "PMP",
                                                      "category": "service", "type": "free_customer_service"}}


def _field(tenant: Tenant, field: str, offset: int, value: dict) -> dict:
    payload = envelope(field, value, waba_id=tenant.number["waba_id"])
    payload["entry"][0]["time"] = int(tenant.at(offset))
    return payload


def openings(tenant: Tenant) -> list[dict]:
    """What came before the story: each customer's first words, which our replies answered."""
    return [_text(tenant, ANA, "ana-hi", 0, "Hi, where is my order?"),
            _text(tenant, BRUNO, "bruno-hi", 5, "Hello, a question about sizes"),
            _text(tenant, CARLA, "carla-hi", 10, "I returned the shoes"),
            _text(tenant, EDU_OLD, "edu-hi", 15, "Good morning")]


def story(tenant: Tenant) -> list[dict]:
    """Every kind of webhook a busy number gets, in the order Meta sent them."""
    failure = {"code": 131026, "title": "Message undeliverable",
               "error_data": {"details": "Message Undeliverable."}}
    return [
        _status(tenant, "out-1", "sent", 61, **_billing(tenant, "out-1", first=True)),
        _status(tenant, "out-1", "delivered", 62, **_billing(tenant, "out-1", first=False)),
        _status(tenant, "out-2", "sent", 64, **_billing(tenant, "out-2", first=True)),
        _status(tenant, "out-3", "sent", 65, **_billing(tenant, "out-3", first=True)),
        _status(tenant, "out-3", "failed", 68, errors=[failure]),
        _status(tenant, "out-1", "read", 90),
        _status(tenant, "out-2", "read", 95),  # delivered skipped: delivery and read coincided
        _text(tenant, EDU_OLD, "edu-ready", 100, "Is my order ready?"),
        _from(tenant, ANA, "ana-like", 120, type="reaction",
              reaction={"message_id": tenant.wamid("out-1"), "emoji": "\U0001f44d"}),
        _text(tenant, ANA, "ana-thanks", 130, "Great, thanks!",
              context={"from": tenant.number["display_phone_number"], "id": tenant.wamid("out-1")}),
        _from(tenant, ANA, "ana-receipt", 140, type="image",
              image={"id": f"media-{tenant.tag}-1", "mime_type": "image/jpeg", "sha256": "c2hhMjU2",
                     "caption": "Receipt"}),
        _from(tenant, BRUNO, "bruno-yes", 150, type="interactive",
              interactive={"type": "button_reply", "button_reply": {"id": "helped-yes", "title": "Yes"}},
              context={"from": tenant.number["display_phone_number"], "id": tenant.wamid("out-2")}),
        _from(tenant, ANA, "ana-unlike", 180, type="reaction",  # taken back: Meta leaves the emoji out
              reaction={"message_id": tenant.wamid("out-1")}),
        _messages_change(tenant, messages=[{
            "from": EDU_OLD, "id": tenant.wamid("edu-moved"), "timestamp": tenant.at(200), "type": "system",
            "system": {"body": f"User Edu changed from {EDU_OLD} to {EDU_NEW}", "wa_id": EDU_NEW,
                       "type": "user_changed_number"}}]),
        _field(tenant, "message_template_status_update", 220, {
            "event": "REJECTED", "message_template_id": int(tenant.template_id),
            "message_template_name": "order_update", "message_template_language": "en_US",
            "reason": "INCORRECT_CATEGORY", "rejection_info": {"reason": "Looks like marketing",
                                                               "recommendation": "Choose MARKETING"}}),
        _text(tenant, EDU_NEW, "edu-new", 250, "New phone, same me"),
        _text(tenant, DIANA, "diana-stop", 300, "STOP"),
        _field(tenant, "phone_number_quality_update", 330, {
            "display_phone_number": tenant.number["display_phone_number"], "event": "DOWNGRADE",
            "current_limit": "TIER_250"}),
        _text(tenant, DIANA, "diana-start", 360, "START"),
    ]


# -- delivering it ------------------------------------------------------------------------------------------


def _reordered(value: Any) -> Any:
    """The same JSON with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {key: _reordered(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(item) for item in value]
    return value


def new_bytes(payload: dict, number: int, rng: random.Random) -> bytes:
    """The payload's content in other bytes: keys reordered, other whitespace and escaping, and keys Meta may add
    at any level (ignored by us, and numbered so no two copies share their bytes)."""
    noted = copy.deepcopy(payload)
    noted["x_delivery"] = number
    value = noted["entry"][0]["changes"][0]["value"]
    value["x_delivery"] = number
    for item in value.get("messages", []) + value.get("statuses", []):
        item["x_trace"] = {"copy": number}
    if rng.random() < 0.5:
        noted = _reordered(noted)
    return json.dumps(noted, sort_keys=rng.random() < 0.3, indent=rng.choice([None, 1, 4]),
                      separators=rng.choice([(",", ":"), (", ", ": ")]), ensure_ascii=rng.random() < 0.5).encode()


def _post_bytes(client, body: bytes, secret: str) -> None:
    response = client.post("/api/v1/webhooks/whatsapp", data=body, headers={
        "Content-Type": "application/json", "X-Hub-Signature-256": sign(body, secret)})
    assert response.status_code == 200, response.get_data(as_text=True)


def drain() -> None:
    """What the webhooks pool does: apply the waiting rows, oldest first, a batch per transaction."""
    while True:
        with unit_of_work() as session:
            if not webhooks.drain_batch(session):
                return


def deliver_in_order(client, tenant: Tenant, payloads: list[dict]) -> None:
    for payload in payloads:
        assert post_webhook(client, payload, secret=tenant.number["app_secret"]).status_code == 200
        drain()


def replay(client, tenant: Tenant, payloads: list[dict], rng: random.Random) -> None:
    """Each payload COPIES times in new bytes, all shuffled, drained in bursts of a few (as the pool meets them)."""
    copies = [(payload, number) for payload in payloads for number in range(COPIES)]
    rng.shuffle(copies)
    while copies:
        size = rng.randint(1, 5)
        burst, copies = copies[:size], copies[size:]
        for payload, number in burst:
            _post_bytes(client, new_bytes(payload, number, rng), tenant.number["app_secret"])
        drain()


# -- the two organizations, up to where the story starts ------------------------------------------------------


def _conversation_of(db_session, tenant: Tenant, wa_id: str) -> Conversation:
    return db_session.execute(select(Conversation).join(Contact, Contact.id == Conversation.contact_id).where(
        Conversation.organization_id == tenant.org.id, Contact.wa_id == wa_id)).scalar_one()


def prepare(client, db_session, tenant: Tenant) -> None:
    """The number, a template waiting for review, the customers' first words and our replies, sent."""
    response = client.post("/api/v1/numbers", json=tenant.number, headers=tenant.headers)
    assert response.status_code == 201, response.get_json()
    db_session.add(MessageTemplate(organization_id=tenant.org.id, waba_id=tenant.number["waba_id"],
                                   name="order_update", language="en_US", category="UTILITY", status="PENDING",
                                   components=[{"type": "BODY", "text": "Your order {{1}} is on its way"}]))
    db_session.flush()
    deliver_in_order(client, tenant, openings(tenant))
    for reply, (wa_id, spec) in REPLIES.items():
        conversation = _conversation_of(db_session, tenant, wa_id)
        response = client.post(f"/api/v1/conversations/{conversation.id}/messages", json=spec, headers=tenant.headers)
        assert response.status_code == 202, response.get_json()
        message_id = uuid.UUID(response.get_json()["id"])
        assert sending.claim_send(db_session, message_id=message_id)
        send_outcomes.record_sent(db_session, message_id=message_id, wamid=tenant.wamid(reply))


@pytest.fixture
def tenants(db_session, organization, admin_headers, login) -> tuple[Tenant, Tenant]:
    t0 = int(utcnow().timestamp()) - STORY_AGE_SECONDS
    other = make_org(db_session, name="Other Ltd", plan_code="enterprise")
    other_headers = login(make_user(db_session, other, role="org_admin"))
    return (Tenant(organization, admin_headers, NUMBER, "A", t0),
            Tenant(other, other_headers, SECOND_NUMBER, "B", t0))


# -- the state, as a person would compare it ------------------------------------------------------------------

# Left out everywhere: generated ids, `sequence` (arrival order is what it records) and the times that say when
# *we* did something (created_at, updated_at, last_message_at, first/last_inbound_at of contacts, waiting_since,
# queued_at, last_outbound_at): they differ between two deliveries whatever their order. Meta's own times
# (statuses, occurred_at, the window) are kept.


def _plain(value: Any, tenant: Tenant) -> Any:
    """The value with this tenant's marks (wamids, media and template ids, its number) taken out."""
    if isinstance(value, dict):
        return {_plain(key, tenant): _plain(item, tenant) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, tenant) for item in value]
    if isinstance(value, str):
        return (value.replace(f".{tenant.tag}.", ".").replace(f"-{tenant.tag}-", "-")
                .replace(tenant.template_id, "<template>").replace(tenant.number["display_phone_number"], "<number>"))
    return value


def _of(db_session, model, tenant: Tenant):
    return db_session.execute(select(model).where(model.organization_id == tenant.org.id)).scalars().all()


def _latest_keywords(messages: list[Message], wa_id_of: dict) -> set[str]:
    """Per contact, the wamid of its latest consent keyword (by Meta's time)."""
    latest: dict[str, Message] = {}
    for message in messages:
        if message.direction.value == "inbound" and (message.content.get("body") or "").upper() in ("STOP", "START"):
            contact = wa_id_of[message.contact_id]
            if contact not in latest or latest[contact].occurred_at < message.occurred_at:
                latest[contact] = message
    return {message.wamid for message in latest.values()}


def _message_key(message: Message) -> str:
    return message.wamid or message.idempotency_key


def _answers_a_superseded_keyword(message: Message, answered_last: set[str]) -> bool:
    # A keyword that arrives after a later one is in the ledger but no longer answered (its confirmation would
    # contradict the one the customer already has): whether an earlier keyword's confirmation went out depends on
    # the order Meta delivered them in. Only the latest keyword's must be there.
    key = message.idempotency_key or ""
    return key.startswith("keyword-reply:") and key.removeprefix("keyword-reply:") not in answered_last


def _contacts(db_session, tenant: Tenant) -> dict[str, Any]:
    contacts = _of(db_session, Contact, tenant)
    wa_id_of = {contact.id: contact.wa_id for contact in contacts}
    return {
        "contacts": {contact.wa_id: {
            "phone": contact.phone_e164, "profile_name": contact.profile_name, "user_id": contact.user_id,
            "marketing_consent": contact.marketing_consent.value, "utility_consent": contact.utility_consent.value,
            "messages_in": contact.messages_in_count, "messages_out": contact.messages_out_count,
            "blocked": contact.is_blocked, "deleted": contact.deleted_at is not None,
        } for contact in contacts},
        "consent ledger": sorted(
            (wa_id_of[event.contact_id], event.action.value, event.scope.value, event.source.value, event.actor,
             event.evidence, event.occurred_at) for event in _of(db_session, ConsentEvent, tenant)),
        "conversations": {wa_id_of[conversation.contact_id]: {
            "status": conversation.status.value, "owner": conversation.owner.value,
            "assigned": conversation.assigned_agent_id is not None, "waiting": conversation.waiting_since is not None,
            "unread": conversation.unread_count, "messages_in": conversation.messages_in_count,
            "messages_out": conversation.messages_out_count, "last_message": conversation.last_message_preview,
            "last_inbound_at": conversation.last_inbound_at, "window_expires_at": conversation.window_expires_at,
            "unreachable_until": conversation.unreachable_until, "referral": conversation.referral,
        } for conversation in _of(db_session, Conversation, tenant)},
    }


def _messages(db_session, tenant: Tenant) -> dict[str, Any]:
    wa_id_of = {contact.id: contact.wa_id for contact in _of(db_session, Contact, tenant)}
    messages = _of(db_session, Message, tenant)
    answered_last = _latest_keywords(messages, wa_id_of)
    return {_message_key(message): {
        "contact": wa_id_of[message.contact_id], "direction": message.direction.value, "type": message.type,
        "sender": message.sender_type.value, "content": message.content, "status": message.status.value,
        "occurred_at": message.occurred_at, "sent_at": message.sent_at, "delivered_at": message.delivered_at,
        "read_at": message.read_at, "failed_at": message.failed_at,
        "error": (message.error_code, message.error_message), "context": message.context_wamid,
        "forwarded": (message.forwarded, message.frequently_forwarded), "reaction": message.reaction,
        "media_id": message.media_id, "pricing": message.pricing, "meta_conversation": message.meta_conversation,
    } for message in messages if not _answers_a_superseded_keyword(message, answered_last)}


def _account(db_session, tenant: Tenant) -> dict[str, Any]:
    [number] = _of(db_session, WhatsAppNumber, tenant)
    [template] = _of(db_session, MessageTemplate, tenant)
    return {
        "number": {"status": number.status.value, "quality": number.quality_rating,
                   "tier": number.messaging_limit_tier},
        "template": {"status": template.status, "reason": template.rejected_reason,
                     "description": template.status_description, "meta_id": template.meta_template_id},
        "alerts": sorted((alert.kind, alert.occurrences, alert.message, json.dumps(alert.data, sort_keys=True))
                         for alert in _of(db_session, Alert, tenant)),
        "number syncs queued": len([job for job in _of(db_session, Job, tenant)
                                    if job.kind == "numbers.sync" and job.status == JobStatus.queued]),
    }


def snapshot(db_session, tenant: Tenant) -> dict[str, Any]:
    db_session.expire_all()
    state = {**_contacts(db_session, tenant), "messages": _messages(db_session, tenant),
             **_account(db_session, tenant)}
    return _plain(state, tenant)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_story_replayed_three_times_shuffled_in_new_bytes_ends_as_one_ordered_delivery(
        client, db_session, tenants, seed):
    ordered, replayed = tenants
    for tenant in tenants:
        prepare(client, db_session, tenant)

    deliver_in_order(client, ordered, story(ordered))
    replay(client, replayed, story(replayed), random.Random(seed))

    failed = db_session.execute(select(WebhookEvent.error).where(
        WebhookEvent.status != WebhookEventStatus.processed)).scalars().all()
    assert failed == []
    assert snapshot(db_session, replayed) == snapshot(db_session, ordered)
