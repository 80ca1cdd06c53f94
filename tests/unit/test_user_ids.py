"""Meta's business-scoped user ids: kept on contacts and messages; a contact known by both ids is one contact."""

from __future__ import annotations

from sqlalchemy import func, select

from shared.models import Contact, Direction, Message
from shared.models.base import utcnow
from tests.unit.test_conversations import deliver, number  # noqa: F401
from tests.unit.test_whatsapp_channel import NUMBER, envelope

WA_ID, USER_ID = "16505551234", "US.13491208655302741918"


def arrival(body, *, wa_id=WA_ID, user_id=USER_ID, with_contacts=True, n=[0]):
    n[0] += 1
    message = {"id": f"wamid.bsuid-{n[0]}", "timestamp": str(int(utcnow().timestamp())), "type": "text",
               "text": {"body": body}}
    if wa_id:
        message["from"] = wa_id
    if user_id:
        message["from_user_id"] = user_id
    value = {"messaging_product": "whatsapp", "messages": [message],
             "metadata": {"display_phone_number": NUMBER["display_phone_number"],
                          "phone_number_id": NUMBER["phone_number_id"]}}
    if with_contacts:
        value["contacts"] = [{"profile": {"name": "Sheena"}, **({"wa_id": wa_id} if wa_id else {}),
                              **({"user_id": user_id} if user_id else {})}]
    return envelope("messages", value)


def test_a_contact_known_by_both_ids_is_one_contact(deliver, db_session, client, admin_headers):
    deliver(arrival("Hi", user_id=None))  # before Meta sent user ids
    deliver(arrival("Hi again"))  # both ids: the contact learns its user id
    deliver(arrival("Only my user id now", wa_id=None))  # a user who hides their phone number
    contact = db_session.execute(select(Contact)).scalar_one()
    assert (contact.wa_id, contact.user_id) == (WA_ID, USER_ID)
    stored = db_session.execute(select(Message.contact_id, Message.from_user_id).where(
        Message.direction == Direction.inbound).order_by(Message.sequence)).all()
    assert [tuple(row) for row in stored] == [(contact.id, None), (contact.id, USER_ID), (contact.id, USER_ID)]
    shown = client.get(f"/api/v1/contacts/{contact.id}", headers=admin_headers).get_json()
    assert shown["user_id"] == USER_ID


def test_a_user_id_never_seen_with_a_phone_is_not_a_contact_yet(deliver, db_session):
    deliver(arrival("Who am I?", wa_id=None, user_id="US.99"))
    assert db_session.execute(select(func.count()).select_from(Contact)).scalar_one() == 0
