"""The send request, `POST /conversations/{id}/messages`: the guarantees its hot path must keep."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError

from shared import db
from shared.models import Contact, Direction, Message
from shared.models.base import utcnow
from shared.services import messages, send_context, sending
from tests.factories import make_department, make_org, make_user
from tests.unit.test_conversations import _armed, deliver, inbound, number, text, the_conversation  # noqa: F401


def _reply(client, conversation, headers, body="Thanks!", **extra):
    return client.post(f"/api/v1/conversations/{conversation.id}/messages", json=text(body),
                       headers={**headers, **extra})


def _outbound(db_session) -> list[Message]:
    db_session.expire_all()
    return list(db_session.execute(
        select(Message).where(Message.direction == Direction.outbound).order_by(Message.sequence)).scalars())


def test_replies_keep_their_order_and_move_the_preview(deliver, db_session, client, admin_headers):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    ids = [_reply(client, conversation, admin_headers, f"Reply {n}").get_json()["id"] for n in range(3)]
    stored = _outbound(db_session)
    assert [str(m.id) for m in stored] == ids  # sequence follows the order they were sent in
    db_session.refresh(conversation)
    assert conversation.last_message_preview == "Reply 2"


def test_the_dispatcher_is_armed_once_and_only_after_commit(deliver, db_session, client, admin_headers, published,
                                                            monkeypatch):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    published.clear()

    def the_database_went_away(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("the database went away"))

    with monkeypatch.context() as patched:  # the request's one write is its INSERT (it commits as it runs)
        patched.setattr(send_context, "insert_queued", the_database_went_away)
        response = _reply(client, conversation, admin_headers)
    assert response.status_code == 503  # database_unavailable: nothing saved, try again
    assert _outbound(db_session) == [] and _armed(published) == []  # not saved, so nothing to send

    assert _reply(client, conversation, admin_headers, "First").status_code == 202
    assert _reply(client, conversation, admin_headers, "Second").status_code == 202
    # The second found the number's dispatcher lease held: one dispatcher takes both.
    assert _armed(published) == [(str(conversation.number_id), str(conversation.organization_id))]


def test_a_request_that_meets_its_idempotency_key_at_the_insert_returns_the_first_message(
        deliver, db_session, client, admin_headers, published, monkeypatch):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    first = _reply(client, conversation, admin_headers, "Only once", **{"Idempotency-Key": "race-1"})
    published.clear()
    looked_up = []
    find = messages.find_by_idempotency_key

    def missed_by_the_first_look(session, **kwargs):
        # The twin request looked before the first committed: the key meets it at the INSERT.
        looked_up.append(kwargs["key"])
        return None if len(looked_up) == 1 else find(session, **kwargs)

    monkeypatch.setattr(messages, "find_by_idempotency_key", missed_by_the_first_look)
    second = _reply(client, conversation, admin_headers, "Only once", **{"Idempotency-Key": "race-1"})
    assert second.status_code == 202 and second.get_json()["id"] == first.get_json()["id"]
    assert len(_outbound(db_session)) == 1 and _armed(published) == []


def test_a_request_whose_context_read_missed_its_idempotency_key_meets_it_at_the_insert(
        deliver, db_session, client, admin_headers, published, monkeypatch):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    first = _reply(client, conversation, admin_headers, "Only once", **{"Idempotency-Key": "race-2"})
    published.clear()
    read = send_context.read_for_send

    def read_before_the_first_committed(session, **kwargs):
        # read_for_send looks the key up with the context: the twin request read it before the first committed
        return dataclasses.replace(read(session, **kwargs), idempotency_key_used_by=None)

    monkeypatch.setattr(send_context, "read_for_send", read_before_the_first_committed)
    second = _reply(client, conversation, admin_headers, "Only once", **{"Idempotency-Key": "race-2"})
    assert second.status_code == 202 and second.get_json()["id"] == first.get_json()["id"]
    assert len(_outbound(db_session)) == 1 and _armed(published) == []


def test_an_agent_replies_only_in_conversations_they_may_see(deliver, db_session, client, login, organization):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    me, colleague = (make_user(db_session, organization, role="agent") for _ in range(2))
    assert _reply(client, conversation, login(me)).status_code == 202  # unclaimed: anyone may answer

    conversation.assigned_agent_id = colleague.id
    db_session.flush()
    refused = _reply(client, conversation, login(me))
    assert (refused.status_code, refused.get_json()["code"]) == (404, "conversation_not_found")

    department = make_department(db_session, organization)
    me.departments.append(department)
    conversation.department_id = department.id
    db_session.flush()
    assert _reply(client, conversation, login(me)).status_code == 202  # my department's


def test_a_signed_out_deactivated_or_suspended_sender_cannot_reply(deliver, db_session, client, login, organization):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    signed_out, deactivated = (make_user(db_session, organization, role="agent") for _ in range(2))
    headers = login(signed_out)
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert _reply(client, conversation, headers).get_json()["code"] == "token_revoked"

    headers = login(deactivated)
    deactivated.deactivated_at = utcnow()
    db_session.flush()
    assert _reply(client, conversation, headers).get_json()["code"] == "token_revoked"

    headers = login(make_user(db_session, organization, role="agent"))
    organization.suspended_at = utcnow()
    db_session.flush()
    refused = _reply(client, conversation, headers)
    assert (refused.status_code, refused.get_json()["code"]) == (403, "organization_suspended")
    assert db_session.execute(select(func.count()).select_from(Message)
                              .where(Message.direction == Direction.outbound)).scalar_one() == 0


def test_a_viewer_cannot_reply(deliver, db_session, client, login, organization):
    deliver(inbound(text("Hi")))
    refused = _reply(client, the_conversation(db_session), login(make_user(db_session, organization, role="viewer")))
    assert (refused.status_code, refused.get_json()["code"]) == (403, "permission_denied")


@pytest.mark.parametrize("change,reason", [("deleted_at", "deleted"), ("blocked_at", "blocked")])
def test_a_deleted_or_blocked_contact_is_refused_as_ineligible(deliver, db_session, client, admin_headers, change,
                                                               reason):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    setattr(db_session.get(Contact, conversation.contact_id), change, utcnow())
    db_session.flush()
    refused = _reply(client, conversation, admin_headers)
    assert refused.status_code == 409
    assert (refused.get_json()["code"], refused.get_json()["details"]["reason"]) == ("contact_ineligible", reason)


def test_another_organizations_or_a_malformed_conversation_is_not_found(deliver, db_session, client, login,
                                                                         admin_headers):
    deliver(inbound(text("Hi")))
    stranger = make_user(db_session, make_org(db_session), role="org_admin")
    refused = _reply(client, the_conversation(db_session), login(stranger))
    assert (refused.status_code, refused.get_json()["code"]) == (404, "conversation_not_found")
    malformed = client.post("/api/v1/conversations/not-a-uuid/messages", json=text("Hi"), headers=admin_headers)
    assert (malformed.status_code, malformed.get_json()["code"]) == (404, "conversation_not_found")


def test_the_queued_line_is_on_the_timeline_with_who_and_from_where(deliver, db_session, client, admin_headers,
                                                                    admin):
    """The sends pool writes it when it first takes the message (not the request: an event-store round trip
    there cost a third of the request), with the time it was queued and the request it came from."""
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    reply = _reply(client, conversation, admin_headers, **{"X-Request-ID": "reply-from-the-inbox"}).get_json()

    def timeline():
        return client.get(f"/api/v1/conversations/{conversation.id}/timeline", headers=admin_headers).get_json()

    for _ in range(2):  # taken, given back unsent, taken again: one line
        with db.new_session() as session:
            batch = sending.claim_batch(session, number_id=conversation.number_id)
            assert [str(item.message_id) for item in batch.items] == [reply["id"]]
            session.commit()
        db_session.execute(update(Message).where(Message.id == reply["id"]).values(status="queued", attempts=0))
    [queued] = [e for e in timeline() if e["event"] == "messages.queued"]
    assert queued["data"]["message_id"] == reply["id"] and queued["actor"] == str(admin.id)
    assert (queued["data"]["ip"], queued["data"]["request_id"]) == ("127.0.0.1", "reply-from-the-inbox")
    at, queued_at = (dt.datetime.fromisoformat(t) for t in (queued["occurred_at"], reply["queued_at"]))
    assert abs(at - queued_at) < dt.timedelta(milliseconds=1)  # the event store keeps milliseconds


@pytest.mark.parametrize("spec, says", [
    ({"type": "text", "text": {"body": 123}}, "wrong type"),
    ({"type": "text", "text": "hello"}, "Not a valid mapping type"),
    ({"type": "location", "location": {"latitude": "north", "longitude": 1}}, "latitude must be a number"),
    ({"type": "location", "location": {"longitude": 1}}, "'latitude' is missing"),
    ({"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick"},
                                             "action": {"buttons": [{"reply": {"title": "Yes"}}]}}}, "'id' is missing"),
    ({"type": "interactive", "interactive": {"type": "button", "body": "Pick"}}, "wrong type"),
])
def test_a_malformed_message_is_refused_in_plain_words_without_python_internals(deliver, db_session, client,
                                                                                admin_headers, spec, says):
    deliver(inbound(text("Hi")))
    response = client.post(f"/api/v1/conversations/{the_conversation(db_session).id}/messages", json=spec,
                           headers=admin_headers)
    answer = response.get_json()
    said = json.dumps(answer)
    assert response.status_code == 422 and says in said, answer
    for internal in ("object of type", "has no len", "NoneType", "could not convert", "object has no attribute",
                     "object is not subscriptable"):
        assert internal not in said
    assert not _outbound(db_session)  # nothing queued


def test_the_reply_is_answered_without_reading_the_new_message_back(deliver, db_session, client, admin_headers):
    """The row's every column is known when it is inserted: a read-back would cost the send request a round
    trip per reply (a column added to messages once brought one back unnoticed)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    _reply(client, conversation, admin_headers, "Warm-up")
    reads_of_messages = []

    def note(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "FROM messages" in statement:
            reads_of_messages.append(statement)
    event.listen(Engine, "before_cursor_execute", note)
    try:
        response = _reply(client, conversation, admin_headers, "On its way")
    finally:
        event.remove(Engine, "before_cursor_execute", note)
    assert response.status_code == 202
    body = response.get_json()
    assert (body["status"], body["forwarded"], body["reaction"], body["content"]["body"]) == (
        "queued", False, None, "On its way")
    assert reads_of_messages == []
