"""The daily work, end to end through the Cloud API sandbox: customers write in, agents answer, statuses come back.

Real web (on a port the sandbox posts its signed webhooks to), a real worker and beat on the real
broker, and the sandbox playing Meta: it reorders and duplicates status webhooks on purpose.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import func, select

from shared.db import unit_of_work
from shared.models import (
    Availability,
    ConsentEvent,
    ConsentState,
    Contact,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    MessageTemplate,
    Organization,
)
from shared.models.base import utcnow
from shared.services import assignment, numbers
from tests.factories import make_user
from tests.integration.conftest import Process, process_env, wait_for

pytestmark = pytest.mark.integration

NUMBER = {"waba_id": "700300400", "phone_number_id": "800300400", "display_phone_number": "15550300400",
          "access_token": "EAAG-sandbox-inbox-token", "app_secret": "sandbox-inbox-secret"}
PHONE_NUMBER_ID = NUMBER["phone_number_id"]
TERMINAL = {MessageStatus.sent, MessageStatus.delivered, MessageStatus.read, MessageStatus.failed,
            MessageStatus.unknown}


def customer() -> str:
    """A fresh customer each time: the sandbox keeps windows and pair rates for the whole run."""
    return f"1650{uuid.uuid4().int % 10**7:07d}"


class Inbox:
    def __init__(self, web, sandbox, app, org_id, agent, admin, number_id):
        self.web, self.sandbox, self.app = web, sandbox, app
        self.org_id, self.agent, self.admin, self.number_id = org_id, agent, admin, number_id

    def headers(self, user, **extra):
        from web.auth import issue_tokens

        with self.app.app_context():
            return {"Authorization": f"Bearer {issue_tokens(user)['access_token']}", **extra}

    def api(self, method, path, user, **kwargs):
        return requests.request(method, f"{self.web}/api/v1{path}", headers=self.headers(user, **kwargs.pop("headers", {})),
                                timeout=10, **kwargs)

    def customer_says(self, wa_id, text):
        response = requests.post(f"{self.sandbox}/_sandbox/numbers/{PHONE_NUMBER_ID}/inbound",
                                 json={"from": wa_id, "type": "text", "text": {"body": text}}, timeout=10)
        response.raise_for_status()
        return response.json()

    def customer_clicks(self, wa_id, reply_id, title, *, kind="button_reply"):
        """The customer taps a reply button (or, kind="list_reply", a list row): Meta sends its id and title."""
        response = requests.post(f"{self.sandbox}/_sandbox/numbers/{PHONE_NUMBER_ID}/inbound", json={
            "from": wa_id, "type": "interactive",
            "interactive": {"type": kind, kind: {"id": reply_id, "title": title}}}, timeout=10)
        response.raise_for_status()
        return response.json()

    def sandbox_number(self, **knobs):
        requests.patch(f"{self.sandbox}/_sandbox/numbers/{PHONE_NUMBER_ID}", json=knobs, timeout=5).raise_for_status()

    def sent_to(self, wa_id):
        response = requests.get(f"{self.sandbox}/_sandbox/messages", params={"to": wa_id}, timeout=5)
        return response.json()["data"]

    def conversation_of(self, wa_id) -> Conversation | None:
        with unit_of_work() as session:
            return session.execute(
                select(Conversation).join(Contact, Contact.id == Conversation.contact_id)
                .where(Contact.wa_id == wa_id, Conversation.organization_id == self.org_id)
            ).scalar_one_or_none()

    def messages_of(self, conversation_id, direction=None) -> list[Message]:
        with unit_of_work() as session:
            query = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.sequence)
            if direction is not None:
                query = query.where(Message.direction == direction)
            return list(session.execute(query).scalars())

    def message(self, message_id) -> Message:
        with unit_of_work() as session:
            return session.get(Message, uuid.UUID(str(message_id)))


def open_inbox(web, sandbox, app, *, name: str = "Inbox Org") -> Inbox:
    """An organization with an admin, an online agent and the sandbox's number, whose webhooks reach `web`."""
    with unit_of_work() as session:
        org = Organization(name=name, plan_code="enterprise")
        session.add(org)
        session.flush()
        admin = make_user(session, org, role="org_admin")
        agent = make_user(session, org, role="agent", availability=Availability.online, max_open_conversations=5)
        number = numbers.create_number(session, org=org, **NUMBER)
        org_id, number_id = org.id, number.id
    requests.post(f"{sandbox}/_sandbox/numbers", json={
        **NUMBER, "callback_url": f"{web}/api/v1/webhooks/whatsapp"}, timeout=5).raise_for_status()
    return Inbox(web, sandbox, app, org_id, agent, admin, number_id)


def quiet_number(sandbox) -> None:
    """No more webhooks for the sandbox's number, and none still on their way (before its tables go)."""
    requests.patch(f"{sandbox}/_sandbox/numbers/{PHONE_NUMBER_ID}", json={"callback_url": None}, timeout=5)
    requests.post(f"{sandbox}/_sandbox/drain", json={"timeout": 10}, timeout=30)


@pytest.fixture
def inbox(worker, beat, web, sandbox, app):
    yield open_inbox(web, sandbox, app)
    quiet_number(sandbox)


def test_a_customer_message_opens_a_conversation_for_an_online_agent_whose_reply_is_delivered_and_read(inbox):
    # Meta's worst habits: every status twice, read before delivered.
    inbox.sandbox_number(duplicate_rate=1.0, reorder_rate=1.0, webhook_delays={"delivered": 0.2, "read": 0.4})
    wa_id = customer()
    inbox.customer_says(wa_id, "Hi, where is my order?")

    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="the conversation")
    conversation = wait_for(lambda: (c := inbox.conversation_of(wa_id)) and c.assigned_agent_id and c,
                            timeout=30, what="the automatic assignment")
    assert conversation.assigned_agent_id == inbox.agent.id
    assert conversation.window_expires_at > utcnow() + dt.timedelta(hours=23)

    response = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.agent,
                         json={"type": "text", "text": {"body": "It ships today!"}})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued"
    reply_id = response.json()["id"]

    read = wait_for(lambda: (m := inbox.message(reply_id)).status == MessageStatus.read and m, timeout=45,
                    what="the reply to be read")
    assert read.sent_at and read.delivered_at and read.read_at
    seconds = [stamp.replace(microsecond=0) for stamp in (read.sent_at, read.delivered_at, read.read_at)]
    assert seconds == sorted(seconds)  # Meta's timestamps have whole seconds
    assert len(inbox.sent_to(wa_id)) == 1  # sent once, whatever the duplicates did
    time.sleep(1.0)  # the late `delivered` (reordered after read) has arrived by now
    assert inbox.message(reply_id).status == MessageStatus.read

    timeline = inbox.api("GET", f"/conversations/{conversation.id}/timeline", inbox.admin).json()
    events = [item["event"] for item in timeline]
    assert "conversations.assigned" in events
    steps = [event for event in events if event.startswith("messages.")]
    assert steps == ["messages.queued", "messages.sent", "messages.delivered", "messages.read"]  # once each, in order


def test_a_free_form_reply_outside_the_window_is_refused_with_the_template_alternatives(inbox):
    wa_id = customer()
    inbox.customer_says(wa_id, "Hello")
    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="the conversation")
    with unit_of_work() as session:  # a day and more goes by
        row = session.get(Conversation, conversation.id)
        row.window_expires_at = utcnow() - dt.timedelta(minutes=5)
        template = MessageTemplate(organization_id=inbox.org_id, waba_id=NUMBER["waba_id"], name="order_followup",
                                   language="en_US", category="UTILITY", status="APPROVED",
                                   components=[{"type": "BODY", "text": "Hi {{1}}, any news on your order?",
                                                "example": {"body_text": [["Ana"]]}}])
        session.add(template)
        session.flush()
        template_id = template.id
    requests.post(f"{inbox.sandbox}/_sandbox/templates", json={
        "waba_id": NUMBER["waba_id"], "name": "order_followup", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hi {{1}}, any news on your order?",
                        "example": {"body_text": [["Ana"]]}}]}, timeout=5).raise_for_status()

    refused = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.agent,
                        json={"type": "text", "text": {"body": "Still there?"}})
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "window_closed"
    assert [t["name"] for t in body["details"]["templates"]] == ["order_followup"]

    accepted = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.agent,
                         json={"type": "template", "template_id": str(template_id), "variables": {"1": "Ana"}})
    assert accepted.status_code == 202, accepted.text
    sent = wait_for(lambda: (m := inbox.message(accepted.json()["id"])).status in TERMINAL and m, timeout=45,
                    what="the template to be sent")
    assert sent.status in (MessageStatus.sent, MessageStatus.delivered, MessageStatus.read), sent.error_message
    assert [m["type"] for m in inbox.sent_to(wa_id)] == ["template"]


def test_stop_opts_the_contact_out_and_confirms(inbox):
    wa_id = customer()
    inbox.customer_says(wa_id, "stop")

    def opted_out():
        with unit_of_work() as session:
            contact = session.execute(select(Contact).where(Contact.wa_id == wa_id)).scalar_one_or_none()
            return contact if contact is not None and contact.marketing_consent == ConsentState.opted_out else None

    contact = wait_for(opted_out, timeout=30, what="the opt-out")
    assert contact.utility_consent == ConsentState.opted_out
    with unit_of_work() as session:
        [event] = session.execute(select(ConsentEvent).where(ConsentEvent.contact_id == contact.id)).scalars()
        assert (event.source.value, event.action.value, event.actor) == ("keyword", "opt_out", "customer")
    confirmation = wait_for(lambda: inbox.sent_to(wa_id), timeout=30, what="the confirmation reply")
    assert confirmation[0]["type"] == "text" and "no longer" in json.dumps(confirmation[0])


def test_a_duplicate_webhook_produces_one_message(inbox):
    wa_id = customer()
    delivered = inbox.customer_says(wa_id, "Only once, please")
    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="the conversation")
    # Meta sends the same event again, in other bytes (its batching differs): the wamid is what counts.
    again = json.dumps(delivered["webhook"], separators=(", ", ": ")).encode()
    signature = "sha256=" + hmac.new(NUMBER["app_secret"].encode(), again, hashlib.sha256).hexdigest()
    response = requests.post(f"{inbox.web}/api/v1/webhooks/whatsapp", data=again, timeout=10,
                             headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature})
    assert response.status_code == 200

    def processed_both():
        with unit_of_work() as session:
            from shared.models import WebhookEvent, WebhookEventStatus

            return session.execute(select(func.count()).select_from(WebhookEvent).where(
                WebhookEvent.organization_id == inbox.org_id,
                WebhookEvent.status == WebhookEventStatus.processed)).scalar_one() >= 2

    wait_for(processed_both, timeout=30, what="both deliveries to be processed")
    inbound = inbox.messages_of(conversation.id, Direction.inbound)
    assert [m.content["body"] for m in inbound] == ["Only once, please"]
    assert inbox.conversation_of(wa_id).messages_in_count == 1


@pytest.fixture
def more_webhook_workers(broker, sandbox, tmp_path_factory):
    """A second webhooks consumer with two children: three processes may now take one customer's payloads."""
    process = Process("webhooks-extra", [
        sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", "webhooks", "-n", "itest-webhooks@%h",
        "--concurrency", "2", "--pool", "prefork", "--prefetch-multiplier", "1", "--without-gossip",
        "--without-mingle", "--loglevel", "INFO"], process_env(broker, WHATSAPP_API_BASE=sandbox),
        tmp_path_factory.mktemp("webhooks-extra"))
    time.sleep(3)
    yield process
    process.stop()


def test_quick_messages_from_one_customer_are_processed_in_order(inbox, more_webhook_workers):
    wa_id = customer()
    texts = [f"part {i}" for i in range(1, 11)]
    for text in texts:
        inbox.customer_says(wa_id, text)
    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="the conversation")
    stored = wait_for(lambda: (rows := inbox.messages_of(conversation.id, Direction.inbound)) and len(rows) == 10
                      and rows, timeout=60, what="all ten messages")
    assert [m.content["body"] for m in stored] == texts
    assert all(m.routed_at is not None for m in stored)
    assert [m.routed_at for m in stored] == sorted(m.routed_at for m in stored)


def _pool_children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    with open(path) as handle:
        return [int(child) for child in handle.read().split()]


def test_a_worker_killed_during_a_burst_of_sends_loses_none_and_sends_none_twice(inbox, worker):
    wa_ids = [customer() for _ in range(12)]
    conversations = []
    for wa_id in wa_ids:
        inbox.customer_says(wa_id, "hello")
    for wa_id in wa_ids:
        conversations.append(wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="conversations"))
    ids = []
    for conversation in conversations:
        for n in range(2):
            response = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.admin,
                                 json={"type": "text", "text": {"body": f"reply {n}"}})
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])

    killed = 0
    deadline = time.monotonic() + 20
    while killed < 2 and time.monotonic() < deadline:  # twice, in the middle of the burst
        with unit_of_work() as session:
            sent = session.execute(select(func.count()).select_from(Message).where(
                Message.id.in_([uuid.UUID(i) for i in ids]), Message.status != MessageStatus.queued)).scalar_one()
        if sent >= 4 * (killed + 1):
            for child in _pool_children(worker.popen.pid):
                os.kill(child, signal.SIGKILL)
            killed += 1
        time.sleep(0.02)
    assert killed >= 1

    def settled():
        rows = [inbox.message(i) for i in ids]
        return all(row.status in TERMINAL for row in rows) and rows

    rows = wait_for(settled, timeout=90, interval=0.5, what="every message to settle")
    assert {row.status for row in rows} <= TERMINAL
    at_sandbox = [m for wa_id in wa_ids for m in inbox.sent_to(wa_id) if m["type"] == "text"]
    bodies = [(m["wa_id"], m["biz_opaque_callback_data"]) for m in at_sandbox]
    assert len(bodies) == len(set(bodies))  # nothing sent twice
    assert len(at_sandbox) <= len(ids)
    sent_here = [row for row in rows if row.status != MessageStatus.unknown and row.status != MessageStatus.failed]
    assert len(sent_here) >= len(ids) - 4  # only the few in flight at a kill may be left unknown


def test_concurrent_automatic_assignments_never_exceed_a_capacity(committed, migrated):
    with unit_of_work() as session:
        org = Organization(name="Busy Org", plan_code="enterprise")
        session.add(org)
        session.flush()
        agents = [make_user(session, org, role="agent", availability=Availability.online, max_open_conversations=2)
                  for _ in range(2)]
        number = numbers.create_number(session, org=org, waba_id="5001", phone_number_id="6001",
                                       display_phone_number="15550006001", access_token="EAAG-busy-token",
                                       app_secret="busy-secret")
        conversation_ids = []
        for i in range(10):
            contact = Contact(organization_id=org.id, wa_id=f"1555000{i:04d}", phone_e164=f"+1555000{i:04d}",
                              identity_key=f"1555000{i:04d}")
            session.add(contact)
            session.flush()
            conversation = Conversation(organization_id=org.id, number_id=number.id, contact_id=contact.id)
            session.add(conversation)
            session.flush()
            conversation_ids.append(conversation.id)
        org_id, agent_ids = org.id, [agent.id for agent in agents]

    barrier = threading.Barrier(len(conversation_ids))
    errors = []

    def assign_one(conversation_id):
        try:
            barrier.wait(timeout=10)
            with unit_of_work() as session:
                conversation = session.execute(select(Conversation).where(Conversation.id == conversation_id)
                                               .with_for_update()).scalar_one()
                assignment.auto_assign(session, conversation=conversation)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=assign_one, args=(cid,)) for cid in conversation_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    with unit_of_work() as session:
        rows = session.execute(select(Conversation).where(Conversation.organization_id == org_id)).scalars().all()
    loads = {agent_id: sum(1 for row in rows if row.assigned_agent_id == agent_id) for agent_id in agent_ids}
    assert loads == {agent_ids[0]: 2, agent_ids[1]: 2}
    waiting = [row for row in rows if row.assigned_agent_id is None]
    assert len(waiting) == 6 and all(row.waiting_since is not None for row in waiting)


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
       b"\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")


def test_media_goes_both_ways_stored_first_and_fetched_or_uploaded_by_the_workers(inbox):
    from shared.storage import get_storage

    wa_id = customer()
    response = requests.post(f"{inbox.sandbox}/_sandbox/numbers/{PHONE_NUMBER_ID}/inbound",
                             json={"from": wa_id, "type": "image", "image": {"caption": "the damage"}}, timeout=10)
    response.raise_for_status()
    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="the conversation")
    fetched = wait_for(lambda: (rows := inbox.messages_of(conversation.id, Direction.inbound)) and rows[0].media_key
                       and rows[0], timeout=30, what="the inbound image to be fetched")
    assert fetched.content["caption"] == "the damage"
    with get_storage().open(fetched.media_key) as handle:
        assert handle.read() == b"sandbox image bytes"

    uploaded = inbox.api("POST", "/media", inbox.agent, files={"file": ("photo.png", PNG, "image/png")})
    assert uploaded.status_code == 201, uploaded.text
    reply = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.agent,
                      json={"type": "image", "image": {"upload": uploaded.json()["upload"], "caption": "our photo"}})
    assert reply.status_code == 202, reply.text
    sent = wait_for(lambda: (m := inbox.message(reply.json()["id"])).status in TERMINAL and m, timeout=45,
                    what="the image to be sent")
    assert sent.status != MessageStatus.failed, sent.error_message
    [at_sandbox] = inbox.sent_to(wa_id)
    assert at_sandbox["type"] == "image" and at_sandbox["request"]["image"]["id"] == sent.media_id


def test_a_refused_token_pauses_the_number_until_new_credentials_and_then_the_message_goes(inbox):
    wa_id = customer()
    inbox.customer_says(wa_id, "Hello?")
    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="the conversation")
    inbox.sandbox_number(access_token="EAAG-rotated-at-meta")  # Meta no longer takes the token we hold
    reply = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.agent,
                      json={"type": "text", "text": {"body": "Sorry for the wait"}})
    assert reply.status_code == 202

    def paused():
        number = inbox.api("GET", f"/numbers/{inbox.number_id}", inbox.admin).json()
        return number["sends_paused_at"] and number

    number = wait_for(paused, timeout=30, what="the number to be paused")
    assert "190" in number["sends_paused_reason"]
    assert inbox.message(reply.json()["id"]).status == MessageStatus.queued  # waiting, not lost, not failed

    fixed = inbox.api("PATCH", f"/numbers/{inbox.number_id}", inbox.admin, json={"access_token": "EAAG-rotated-at-meta"})
    assert fixed.status_code == 200 and fixed.json()["sends_paused_at"] is None
    sent = wait_for(lambda: (m := inbox.message(reply.json()["id"])).status in TERMINAL and m, timeout=45,
                    what="the message to go once the number is resumed")
    assert sent.status in (MessageStatus.sent, MessageStatus.delivered, MessageStatus.read), sent.error_message
    assert len(inbox.sent_to(wa_id)) == 1


def test_an_undeliverable_number_fails_the_message_with_metas_code(inbox):
    wa_id = customer()
    inbox.customer_says(wa_id, "hi")
    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=30, what="the conversation")
    inbox.sandbox_number(undeliverable=[wa_id])
    reply = inbox.api("POST", f"/conversations/{conversation.id}/messages", inbox.agent,
                      json={"type": "text", "text": {"body": "Can you read this?"}})
    failed = wait_for(lambda: (m := inbox.message(reply.json()["id"])).status == MessageStatus.failed and m,
                      timeout=45, what="the failed status")
    assert failed.error_code == "131026"


def test_a_lost_drain_is_recovered_by_the_sweep(inbox):
    """The intake set the drain flag, but its drain task never reached the broker: the sweep drains the row."""
    from shared.queueing import publish

    lost = []
    publish.set_publisher(lambda name, kwargs, countdown=None: lost.append(name))  # the broker never hears of this drain
    try:
        wa_id = customer()
        inbox.customer_says(wa_id, "Is anyone there?")
        wait_for(lambda: lost, timeout=10, what="the intake")
    finally:
        publish.set_publisher(None)
    assert lost == ["webhooks.drain"]  # one drain armed (its flag set), and dropped
    conversation = wait_for(lambda: inbox.conversation_of(wa_id), timeout=45, what="the sweep to process it")
    assert [m.content["body"] for m in inbox.messages_of(conversation.id)] == ["Is anyone there?"]
