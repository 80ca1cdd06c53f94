"""Click-to-WhatsApp referrals on the conversation, and Meta's words kept with a template's rejection."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from shared.models import MessageTemplate
from shared.models.base import utcnow
from tests.unit.test_conversations import deliver, inbound, number, text, the_conversation  # noqa: F401
from tests.unit.test_whatsapp_channel import NUMBER, envelope

AD = {"source_url": "https://fb.me/3cr4Wqqkk", "source_id": "120208574093870557", "source_type": "ad",
      "headline": "Spring sale", "body": "20% off", "media_type": "image",
      "image_url": "https://scontent.xx.fbcdn.net/v/t45.1600-4/518.jpg", "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ"}


def test_a_message_from_an_ad_records_the_source_and_the_free_entry_window(deliver, db_session, client,
                                                                           admin_headers):
    deliver(inbound(text("I saw your ad")))
    assert the_conversation(db_session).referral is None
    deliver(inbound({**text("Is the sale still on?"), "referral": AD}))
    conversation = the_conversation(db_session)
    assert {k: conversation.referral[k] for k in ("source_type", "source_id", "ctwa_clid", "headline")} == {
        "source_type": "ad", "source_id": "120208574093870557", "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ",
        "headline": "Spring sale"}
    assert abs(conversation.free_entry_until - (utcnow() + dt.timedelta(hours=72))) < dt.timedelta(minutes=5)
    shown = client.get(f"/api/v1/conversations/{conversation.id}", headers=admin_headers).get_json()
    assert shown["referral"]["source_url"] == AD["source_url"] and shown["free_entry_until"]


def test_a_rejection_keeps_metas_reason_and_recommendation(deliver, db_session, organization, client, admin_headers):
    template = MessageTemplate(organization_id=organization.id, waba_id=NUMBER["waba_id"], name="spring_sale",
                               language="en_US", category="MARKETING", status="PENDING", meta_template_id="5551234",
                               components=[{"type": "BODY", "text": "Hello"}])
    db_session.add(template)
    db_session.flush()
    deliver(envelope("message_template_status_update", {
        "event": "REJECTED", "message_template_id": 5551234, "message_template_name": "spring_sale",
        "message_template_language": "en_US", "reason": "INCORRECT_CATEGORY",
        "rejection_info": {"reason": "The content is marketing", "recommendation": "Submit it as MARKETING"}}))
    db_session.expire_all()
    template = db_session.execute(select(MessageTemplate)).scalar_one()
    assert (template.status, template.rejected_reason) == ("REJECTED", "INCORRECT_CATEGORY")
    assert template.status_description == ("reason: The content is marketing; "
                                           "recommendation: Submit it as MARKETING")
    shown = client.get(f"/api/v1/templates/{template.id}", headers=admin_headers).get_json()
    assert shown["status_description"] == template.status_description
