"""Meta's account restrictions (account_update): kept on the number, and while they last its sends are held with
a clear reason instead of being attempted; they go once the restriction ends."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from shared.models import Contact, Conversation, Message, MessageStatus, NumberStatus, WhatsAppNumber
from shared.models.base import utcnow
from shared.services import sending
from tests.unit.test_conversations import deliver, inbound, number, text, the_conversation  # noqa: F401
from tests.unit.test_reachability import _send_template, _templates
from tests.unit.test_whatsapp_channel import envelope

IN_A_DAY = int((utcnow() + dt.timedelta(days=1)).timestamp())


def _restriction(*entries):
    return envelope("account_update", {"event": "ACCOUNT_RESTRICTION", "restriction_info": [
        {"restriction_type": kind, "expiration": expiration} for kind, expiration in entries]})


def _ban(state):
    return envelope("account_update", {"event": "DISABLED_UPDATE",
                                       "ban_info": {"waba_ban_state": state, "waba_ban_date": "2026-12-07"}})


def _reply(client, conversation, headers, body="Thanks"):
    answer = client.post(f"/api/v1/conversations/{conversation.id}/messages", json=text(body), headers=headers)
    assert answer.status_code == 202, answer.get_json()
    return answer.get_json()["id"]


def _claimed(db_session, conversation) -> list[str]:
    return [str(item.message_id) for item in sending.claim_batch(db_session, number_id=conversation.number_id).items]


def _restriction_ends(db_session, number_id) -> None:
    ended = utcnow() - dt.timedelta(hours=1)  # before the test's transaction began (its now())
    db_session.execute(update(WhatsAppNumber).where(WhatsAppNumber.id == number_id).values(
        sends_held_until=ended, templates_held_until=ended))
    db_session.execute(update(Message).where(Message.status == MessageStatus.queued).values(next_attempt_at=ended))
    db_session.flush()


def test_a_business_initiated_restriction_holds_templates_and_lets_replies_go(deliver, db_session, client,
                                                                              admin_headers, organization, number):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    deliver(_restriction(("RESTRICTED_BIZ_INITIATED_MESSAGING", IN_A_DAY)))

    shown = client.get(f"/api/v1/numbers/{number['id']}", headers=admin_headers).get_json()
    assert shown["status"] == "restricted"
    assert shown["restriction_info"] == [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                                          "expiration": IN_A_DAY}]
    assert dt.datetime.fromisoformat(shown["templates_held_until"]).timestamp() == IN_A_DAY
    assert shown["sends_held_until"] is None
    assert "template messages wait" in shown["sends_held_reason"]

    template = _send_template(client, conversation, admin_headers, _templates(db_session, organization)["order_update"])
    assert template.status_code == 202  # accepted: it waits for the restriction to end
    other = _reply_in_another_conversation(deliver, db_session, client, admin_headers)
    assert _claimed(db_session, conversation) == [other]  # the reply goes, the template waits
    assert db_session.get(Message, template.get_json()["id"]).status == MessageStatus.queued
    # The sweep does not wake the number for a message that is held.
    assert (str(conversation.number_id), str(organization.id)) not in sending.due_numbers(db_session)

    _restriction_ends(db_session, conversation.number_id)
    assert (str(conversation.number_id), str(organization.id)) in sending.due_numbers(db_session)
    assert _claimed(db_session, conversation) == [template.get_json()["id"]]


def _reply_in_another_conversation(deliver, db_session, client, admin_headers) -> str:
    deliver(inbound(text("Me too"), wa_id="16505550777", name="Otto"))
    other = db_session.execute(select(Conversation).join(Contact, Contact.id == Conversation.contact_id)
                               .where(Contact.wa_id == "16505550777")).scalar_one()
    return _reply(client, other, admin_headers, "Coming")


def test_a_restriction_on_customer_replies_holds_every_send_until_it_expires(deliver, db_session, client,
                                                                             admin_headers, organization, number):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    deliver(_restriction(("RESTRICTED_CUSTOMER_INITIATED_MESSAGING", IN_A_DAY),
                         ("RESTRICTED_ADD_PHONE_NUMBER_ACTION", IN_A_DAY)))
    reply = _reply(client, conversation, admin_headers)

    batch = sending.claim_batch(db_session, number_id=conversation.number_id)
    assert batch.paused and batch.items == []  # nothing attempted, nothing failed
    assert db_session.get(Message, reply).status == MessageStatus.queued
    assert sending.due_numbers(db_session) == []
    shown = client.get(f"/api/v1/numbers/{number['id']}", headers=admin_headers).get_json()
    assert "every message waits" in shown["sends_held_reason"]

    _restriction_ends(db_session, conversation.number_id)
    assert _claimed(db_session, conversation) == [reply]
    shown = client.get(f"/api/v1/numbers/{number['id']}", headers=admin_headers).get_json()
    assert shown["sends_held_reason"] is None


def test_a_restriction_that_only_stops_adding_numbers_holds_no_send(deliver, db_session, client, admin_headers):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    deliver(_restriction(("RESTRICTED_ADD_PHONE_NUMBER_ACTION", IN_A_DAY)))
    reply = _reply(client, conversation, admin_headers)
    assert _claimed(db_session, conversation) == [reply]


def test_a_disabled_account_holds_every_send_until_meta_reinstates_it(deliver, db_session, client, admin_headers,
                                                                      number):
    deliver(inbound(text("Hi")))
    conversation = the_conversation(db_session)
    deliver(_ban("SCHEDULE_FOR_DISABLE"))  # a warning: sends still go
    first = _reply(client, conversation, admin_headers, "First")
    assert _claimed(db_session, conversation) == [first]

    deliver(_ban("DISABLE"))
    second = _reply(client, conversation, admin_headers, "Second")
    assert sending.claim_batch(db_session, number_id=conversation.number_id).paused
    shown = client.get(f"/api/v1/numbers/{number['id']}", headers=admin_headers).get_json()
    assert shown["status"] == "restricted" and "until Meta reinstates it" in shown["sends_held_reason"]

    deliver(_ban("REINSTATE"))
    db_session.expire_all()
    assert db_session.get(WhatsAppNumber, conversation.number_id).status == NumberStatus.connected
    # The first is still in flight (sending), so the second waits behind it in its conversation.
    db_session.execute(update(Message).where(Message.id == first).values(status=MessageStatus.sent))
    assert _claimed(db_session, conversation) == [second]


def test_an_account_update_redelivered_in_other_bytes_is_one_occurrence_of_its_alert(deliver, db_session, client,
                                                                                     admin_headers):
    update = _restriction(("RESTRICTED_BIZ_INITIATED_MESSAGING", IN_A_DAY))
    update["entry"][0]["time"] = 1765000000
    deliver(update)
    deliver({**update, "again": True})  # Meta repeats it, in new bytes
    alerts = client.get("/api/v1/alerts?kind=account_restricted", headers=admin_headers).get_json()["items"]
    assert [a["occurrences"] for a in alerts] == [1]
