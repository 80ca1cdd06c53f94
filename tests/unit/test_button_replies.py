"""Templates' quick-reply buttons act: STOP-like payloads opt out of marketing by default, an organization maps
its own payloads to actions, and the consent ledger names the message (and campaign) the button answered."""

from __future__ import annotations

import itertools

from sqlalchemy import select

from shared.models import ConsentEvent, ConsentState, Contact, Direction, Message, Tag
from tests.unit.test_conversations import deliver, inbound, number, sent_reply, text  # noqa: F401

_taps = itertools.count(1)


def tap(payload, answering=None):
    item = {"type": "button", "button": {"payload": payload, "text": payload.title()}}
    if answering:
        item["context"] = {"from": "15550783881", "id": answering}
    return item


def _contact(db_session) -> Contact:
    return db_session.execute(select(Contact)).scalar_one()


def test_a_stop_button_opts_out_of_marketing_and_names_the_message_it_answers(deliver, db_session, client,
                                                                              admin_headers):
    deliver(inbound(text("Hi")))
    contact = _contact(db_session)
    contact.marketing_consent = ConsentState.opted_in
    db_session.flush()
    ours = sent_reply(db_session, client, admin_headers, "wamid.spring-sale", body="Spring sale!")

    deliver(inbound(tap("STOP_PROMOTIONS", answering="wamid.spring-sale")))

    db_session.expire_all()
    contact = _contact(db_session)
    assert contact.marketing_consent == ConsentState.opted_out
    assert contact.utility_consent != ConsentState.opted_out  # marketing only: order updates still reach them
    event = db_session.execute(select(ConsentEvent).order_by(ConsentEvent.occurred_at.desc())).scalars().first()
    assert event.scope.value == "marketing" and str(ours.id) in event.evidence
    replies = db_session.execute(select(Message).where(Message.direction == Direction.outbound,
                                                       Message.sender_type == "system")).scalars().all()
    assert replies == []  # a tapped button is no typed keyword: no keyword confirmation


def test_an_organizations_own_payloads_tag_opt_in_or_do_nothing(deliver, db_session, client, admin_headers,
                                                                organization):
    url = f"/api/v1/organizations/{organization.id}"
    mapping = {"YES_DEALS": "opt_in_marketing", "VIP": "tag:vip-lead", "STOP_BY_STORE": "handoff"}
    saved = client.patch(url, json={"settings": {"button_payload_actions": mapping}}, headers=admin_headers)
    assert saved.status_code == 200, saved.get_json()
    deliver(inbound(tap("YES_DEALS")))
    deliver(inbound(tap("VIP")))
    deliver(inbound(tap("STOP_BY_STORE")))  # mapped: the org's word wins over the STOP-like default
    deliver(inbound(tap("MAYBE_LATER")))
    db_session.expire_all()
    contact = _contact(db_session)
    assert contact.marketing_consent == ConsentState.opted_in
    assert [tag.name for tag in contact.tags] == ["vip-lead"]
    assert db_session.execute(select(Tag.name)).scalars().all() == ["vip-lead"]


def test_a_mapping_to_an_unknown_action_is_refused(client, admin_headers, organization):
    response = client.patch(f"/api/v1/organizations/{organization.id}",
                            json={"settings": {"button_payload_actions": {"YES": "delete_everything"}}},
                            headers=admin_headers)
    assert response.status_code == 422
    assert "button_payload_actions" in response.get_data(as_text=True)
