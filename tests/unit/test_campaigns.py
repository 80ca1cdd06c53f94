"""Campaigns in-process: the API's checks, the pre-flight's counts, the drip's exactly-once ledger, pause and
resume, opt-outs mid-campaign, 131049's next-day retry and the funnel."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from shared.db import unit_of_work
from shared.models import (
    AttributeDefinition,
    AttributeType,
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    ConsentState,
    Contact,
    Conversation,
    Direction,
    Message,
    MessageStatus,
    MessageTemplate,
    RecipientState,
    SenderType,
    SubscriptionStatus,
    Tag,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.queueing.names import DISPATCH_CAMPAIGN
from shared.redis_client import get_redis
from shared.services import campaign_dispatch, campaign_feedback, campaign_stats, sending
from tests.unit.test_conversations import number  # noqa: F401
from tests.unit.test_whatsapp_channel import NUMBER

BODY = "Hi {{1}}, your code is {{2}}"
VARIABLES = {"body": [{"source": "contact.first_name", "fallback": "there"},
                      {"source": "attribute.coupon", "fallback": "WELCOME10"}]}


@pytest.fixture
def template(db_session, organization):
    made = MessageTemplate(organization_id=organization.id, waba_id=NUMBER["waba_id"], name="spring_sale",
                           language="en_US", category="MARKETING", status="APPROVED",
                           components=[{"type": "BODY", "text": BODY,
                                        "example": {"body_text": [["Ana", "SAVE5"]]}}])
    db_session.add_all([made, AttributeDefinition(organization_id=organization.id, key="coupon", label="Coupon",
                                                  type=AttributeType.text)])
    db_session.flush()
    return made


def _contact(db_session, organization, n: int, *, consent=ConsentState.opted_in, name=None, **fields) -> Contact:
    phone = f"+1650555{n:04d}"
    contact = Contact(organization_id=organization.id, wa_id=phone[1:], phone_e164=phone, identity_key=phone[1:],
                      name=name, marketing_consent=consent, **fields)
    db_session.add(contact)
    db_session.flush()
    return contact


@pytest.fixture
def audience(db_session, organization, number):
    """Seven opted-in contacts and one of each suppression reason."""
    eligible = [_contact(db_session, organization, n, name=f"Person{n} Last") for n in range(7)]
    eligible[0].custom_attributes = {"coupon": "VIP50"}
    suppressed = {
        "no_opt_in": _contact(db_session, organization, 100, consent=ConsentState.unknown),
        "opted_out": _contact(db_session, organization, 101, consent=ConsentState.opted_out),
        "blocked": _contact(db_session, organization, 102, blocked_at=utcnow()),
        "invalid_phone": _contact(db_session, organization, 103),
        "unreachable": _contact(db_session, organization, 104),
        "marketing_cap": _contact(db_session, organization, 105),
    }
    suppressed["invalid_phone"].wa_id = ""
    number_id = db_session.execute(select(WhatsAppNumber.id)).scalar_one()
    held = Conversation(organization_id=organization.id, number_id=number_id,
                        contact_id=suppressed["unreachable"].id, unreachable_until=utcnow() + dt.timedelta(hours=5))
    capped = Conversation(organization_id=organization.id, number_id=number_id,
                          contact_id=suppressed["marketing_cap"].id)
    db_session.add_all([held, capped])
    db_session.flush()
    db_session.add(Message(organization_id=organization.id, conversation_id=capped.id,
                           contact_id=suppressed["marketing_cap"].id, number_id=number_id,
                           direction=Direction.outbound, type="template", content={}, status=MessageStatus.failed,
                           failed_at=utcnow() - dt.timedelta(hours=3), error_code="131049",
                           sender_type=SenderType.campaign))
    deleted = _contact(db_session, organization, 106)
    deleted.deleted_at = utcnow()
    db_session.flush()
    return {"eligible": eligible, "suppressed": suppressed}


def _create(client, headers, template, **fields):
    body = {"name": "Spring sale", "template_id": str(template.id), "variables": VARIABLES, **fields}
    return client.post("/api/v1/campaigns", json=body, headers=headers)


def _campaign(client, headers, template, **fields) -> dict:
    response = _create(client, headers, template, **fields)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _turns(campaign_id: str, times: int = 1) -> list[campaign_dispatch.Turn]:
    turns = []
    for _ in range(times):
        with unit_of_work() as session:
            turns.append(campaign_dispatch.run_turn(session, campaign_id=campaign_id))
    return turns


def _campaign_messages(db_session, campaign_id) -> list[Message]:
    db_session.expire_all()
    return list(db_session.execute(select(Message).where(Message.campaign_id == campaign_id)
                                   .order_by(Message.contact_id)).scalars())


def test_preflight_counts_eligible_and_every_suppression_reason_and_estimates_cost(client, admin_headers, template,
                                                                                    audience):
    campaign = _campaign(client, admin_headers, template)
    report = client.get(f"/api/v1/campaigns/{campaign['id']}/preflight", headers=admin_headers).get_json()
    assert report["blocking"] is False, report["problems"]
    assert report["recipients"]["eligible"] == 7
    reasons = {k: v for k, v in report["recipients"]["suppressed_by_reason"].items() if v}
    assert reasons == {"no_opt_in": 1, "opted_out": 1, "blocked": 1, "invalid_phone": 1, "unreachable": 1,
                       "marketing_cap": 1}
    assert report["recipients"]["total"] == 13  # the deleted contact is nobody's audience
    assert report["cost"]["total_minor"] > 0 and report["cost"]["currency"] == "USD"
    assert report["eta_seconds"] == 1  # 7 recipients at 80 messages/s
    assert report["messaging_limit"] == {"tier": None, "limit": None, "used_last_24h": 0, "room": None}
    assert [w["code"] for w in report["warnings"]] == ["messaging_limit_unknown"]


def test_preflight_reports_the_messaging_limits_room_and_the_drip_pauses_when_it_is_used(
        client, admin_headers, template, audience, db_session):
    db_session.execute(select(WhatsAppNumber)).scalar_one().messaging_limit_tier = "TIER_50"
    db_session.flush()
    campaign = _campaign(client, admin_headers, template)
    report = client.get(f"/api/v1/campaigns/{campaign['id']}/preflight", headers=admin_headers).get_json()
    assert report["messaging_limit"] == {"tier": "TIER_50", "limit": 50, "used_last_24h": 0, "room": 50}
    assert report["warnings"] == []
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"])
    db_session.get(Campaign, campaign["id"]).limit_room = 3  # as if 47 had been reached in the last 24 h
    db_session.flush()
    assert [turn.queued for turn in _turns(campaign["id"], 2)] == [3, 0]  # the room's 3, not the 7 eligible
    body = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=admin_headers).get_json()
    assert (body["status"], body["pause_reason"]) == ("paused", "messaging_limit")


def test_preflight_counts_recipients_a_variable_without_fallback_has_no_value_for(client, admin_headers, template,
                                                                                 audience):
    variables = {"body": [{"source": "contact.first_name"}, {"source": "attribute.coupon"}]}  # no fallbacks
    audience["eligible"][1].name = "  "
    campaign = _campaign(client, admin_headers, template, variables=variables)
    report = client.get(f"/api/v1/campaigns/{campaign['id']}/preflight", headers=admin_headers).get_json()
    # six have a name but no coupon, one a coupon but a blank name: only person 0 has both
    assert report["recipients"]["eligible"] == 1
    assert report["recipients"]["suppressed_by_reason"]["missing_variable"] == 6
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"], 2)
    skipped = client.get(f"/api/v1/campaigns/{campaign['id']}/recipients?status=skipped&limit=50",
                         headers=admin_headers).get_json()["items"]
    assert sum(1 for item in skipped if item["reason"] == "missing_variable") == 6


def test_tags_audience_any_all_none(client, admin_headers, template, audience, db_session, organization):
    vip, churned = Tag(organization_id=organization.id, name="vip"), Tag(organization_id=organization.id, name="churned")
    db_session.add_all([vip, churned])
    db_session.flush()
    people = audience["eligible"]
    for contact in people[:3]:
        contact.tags.append(vip)
    people[0].tags.append(churned)
    db_session.flush()
    campaign = _campaign(client, admin_headers, template,
                         audience={"type": "tags", "tags_any": ["vip"], "tags_none": ["churned"]})
    report = client.get(f"/api/v1/campaigns/{campaign['id']}/preflight", headers=admin_headers).get_json()
    assert report["recipients"]["eligible"] == 2


def test_bad_requests_get_the_error_shape_and_change_nothing(client, admin_headers, template, audience, db_session,
                                                             organization, published):
    pending = MessageTemplate(organization_id=organization.id, waba_id=NUMBER["waba_id"], name="not_yet",
                              language="en_US", category="MARKETING", status="PENDING",
                              components=[{"type": "BODY", "text": "Hello"}])
    db_session.add(pending)
    db_session.flush()
    refused = _create(client, admin_headers, pending, variables={})
    assert refused.status_code == 409 and refused.get_json()["code"] == "template_not_approved"
    extra = _create(client, admin_headers, template,
                    variables={"body": [*VARIABLES["body"], {"source": "literal", "value": "x"}]})
    assert extra.status_code == 422 and extra.get_json()["code"] == "campaign_invalid"
    assert db_session.execute(select(func.count()).select_from(Campaign)).scalar_one() == 0

    campaign = _campaign(client, admin_headers, template)
    url = f"/api/v1/campaigns/{campaign['id']}"
    past = client.post(f"{url}/schedule", json={"scheduled_at": "2020-01-01T09:00:00"}, headers=admin_headers)
    assert past.status_code == 422 and past.get_json()["code"] == "campaign_invalid"
    assert client.get(url, headers=admin_headers).get_json()["status"] == "draft"

    assert client.post(f"{url}/start", headers=admin_headers).status_code == 202
    assert [name for name, _ in published].count(DISPATCH_CAMPAIGN) == 1
    edit = client.patch(url, json={"audience": {"type": "all"}}, headers=admin_headers)
    assert edit.status_code == 409 and edit.get_json()["code"] == "campaign_state_conflict"
    edit = client.patch(url, json={"template_id": str(template.id)}, headers=admin_headers)
    assert edit.status_code == 409
    assert client.patch(url, json={"name": "Renamed"}, headers=admin_headers).status_code == 200

    assert client.post(f"{url}/cancel", headers=admin_headers).status_code == 200
    again = client.post(f"{url}/start", headers=admin_headers)
    assert again.status_code == 409 and again.get_json()["code"] == "campaign_state_conflict"
    assert set(again.get_json()) == {"code", "message", "details", "request_id"}


def test_start_is_refused_with_the_preflights_blocking_problems(client, admin_headers, template, db_session, number):
    campaign = _campaign(client, admin_headers, template)  # nobody in the audience
    response = client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "preflight_blocked"
    assert [p["code"] for p in body["details"]["problems"]] == ["no_eligible_recipients"]
    assert client.get(f"/api/v1/campaigns/{campaign['id']}", headers=admin_headers).get_json()["status"] == "draft"


def test_the_drip_sends_each_eligible_recipient_one_rendered_message(client, admin_headers, template, audience,
                                                                     db_session):
    campaign = _campaign(client, admin_headers, template)
    assert client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers).status_code == 202
    first, second = _turns(campaign["id"], 2)
    assert first.outcome == "resolved" and second.queued == 7
    ledger = db_session.execute(select(CampaignRecipient.state, func.count())
                                .where(CampaignRecipient.campaign_id == campaign["id"])
                                .group_by(CampaignRecipient.state)).all()
    assert dict(ledger) == {RecipientState.queued: 7, RecipientState.skipped: 6}
    sent = _campaign_messages(db_session, campaign["id"])
    assert len(sent) == 7 and {m.sender_type for m in sent} == {SenderType.campaign}
    texts = sorted(m.content["components"][0]["parameters"][0]["text"] + "/" +
                   m.content["components"][0]["parameters"][1]["text"] for m in sent)
    assert texts[0] == "Person0/VIP50" and texts[1] == "Person1/WELCOME10"
    # the ledger row and the message are tied one to one
    tied = db_session.execute(select(func.count()).select_from(CampaignRecipient).join(
        Message, Message.id == CampaignRecipient.message_id)).scalar_one()
    assert tied == 7
    assert _turns(campaign["id"], 2)[-1].queued == 0  # another turn (a redelivery) sends nobody again
    assert len(_campaign_messages(db_session, campaign["id"])) == 7
    progress = client.get(f"/api/v1/campaigns/{campaign['id']}/progress", headers=admin_headers).get_json()
    assert (progress["recipients"], progress["pending"], progress["in_flight"], progress["skipped"]) == (13, 0, 7, 6)
    assert progress["status"] == "running" and progress["percent"] == round(100 * 6 / 13, 1)


def test_pause_withdraws_what_no_dispatcher_took_and_resume_sends_everyone_once(client, admin_headers, template,
                                                                                audience, db_session):
    campaign = _campaign(client, admin_headers, template)
    url = f"/api/v1/campaigns/{campaign['id']}"
    client.post(f"{url}/start", headers=admin_headers)
    _turns(campaign["id"], 2)
    with unit_of_work() as session:  # a dispatcher took two of them (claimed, so they go)
        batch = sending.claim_batch(session, number_id=db_session.execute(select(WhatsAppNumber.id)).scalar_one(),
                                    max_batch=2, horizon_seconds=10)
        assert len(batch.items) == 2
    assert client.post(f"{url}/pause", headers=admin_headers).status_code == 200
    remaining = _campaign_messages(db_session, campaign["id"])
    assert len(remaining) == 2 and {m.status for m in remaining} == {MessageStatus.sending}
    assert _turns(campaign["id"])[0].outcome == "paused"  # a paused campaign drips nothing
    assert client.post(f"{url}/resume", headers=admin_headers).status_code == 202
    _turns(campaign["id"])
    after = _campaign_messages(db_session, campaign["id"])
    assert len(after) == 7 and len({m.contact_id for m in after}) == 7


def test_a_contact_who_opts_out_mid_campaign_is_skipped_with_the_reason(client, admin_headers, template, audience,
                                                                       db_session):
    campaign = _campaign(client, admin_headers, template)
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"])  # the audience resolved: seven pending
    leaving = audience["eligible"][3]
    leaving.marketing_consent = ConsentState.opted_out
    db_session.flush()
    _turns(campaign["id"])
    page = client.get(f"/api/v1/campaigns/{campaign['id']}/recipients?status=skipped",
                      headers=admin_headers).get_json()
    reasons = {item["contact_id"]: item["reason"] for item in page["items"]}
    assert reasons[str(leaving.id)] == "opted_out"
    assert len(_campaign_messages(db_session, campaign["id"])) == 6


def test_a_131049_is_tried_again_the_next_day_and_other_failures_are_final(client, admin_headers, template, audience,
                                                                          db_session):
    campaign = _campaign(client, admin_headers, template)
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"], 2)
    capped, other = _campaign_messages(db_session, campaign["id"])[:2]
    for message, code in ((capped, "131049"), (other, "131026")):
        message.status, message.failed_at, message.error_code = MessageStatus.failed, utcnow(), code
        campaign_feedback.note_failed(db_session, message)
    db_session.flush()
    rows = {r.contact_id: r for r in db_session.execute(select(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign["id"])).scalars()}
    assert rows[capped.contact_id].state == RecipientState.retry
    assert rows[capped.contact_id].next_attempt_at == capped.failed_at + dt.timedelta(hours=24)
    assert rows[other.contact_id].state == RecipientState.queued  # final: its message says failed
    assert _turns(campaign["id"])[0].outcome == "running"  # not due yet: the campaign waits, it does not end
    rows[capped.contact_id].next_attempt_at = utcnow() - dt.timedelta(seconds=1)  # the next day came
    db_session.flush()
    _turns(campaign["id"])
    tries = [m for m in _campaign_messages(db_session, campaign["id"]) if m.contact_id == capped.contact_id]
    assert len(tries) == 2 and tries[0].idempotency_key != tries[1].idempotency_key
    stats = client.get(f"/api/v1/campaigns/{campaign['id']}/stats", headers=admin_headers).get_json()
    assert stats["failed_by_code"] == {"131026": 1}


def test_the_funnel_counts_statuses_replies_and_clicks(client, admin_headers, template, audience, db_session):
    campaign = _campaign(client, admin_headers, template)
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"], 2)
    sent = _campaign_messages(db_session, campaign["id"])
    now = utcnow()
    for i, message in enumerate(sent):
        message.wamid, message.sent_at = f"wamid.campaign-{i}", now - dt.timedelta(minutes=5)
        message.status = [MessageStatus.sent, MessageStatus.delivered, MessageStatus.read][i % 3]
        if message.status != MessageStatus.sent:
            message.delivered_at = now
    db_session.flush()
    reply_to, click_on = sent[1], sent[2]
    for source, kind, content in ((reply_to, "text", {"body": "Tell me more"}),
                                  (click_on, "button", {"payload": "STOP_PROMOS", "text": "Stop"})):
        db_session.add(Message(organization_id=source.organization_id, conversation_id=source.conversation_id,
                               contact_id=source.contact_id, number_id=source.number_id, direction=Direction.inbound,
                               type=kind, content=content, status=MessageStatus.received, sender_type=SenderType.customer,
                               context_wamid=source.wamid if kind == "button" else None))
    db_session.flush()
    stats = campaign_stats.funnel(db_session, campaign=db_session.get(Campaign, campaign["id"]))
    assert (stats["sent"], stats["delivered"], stats["read"]) == (7, 4, 2)
    assert stats["replied"] == 2 and stats["clicked"] == 1
    assert stats["clicks_by_payload"] == {"STOP_PROMOS": 1}
    assert stats["rates"]["delivered"] == round(4 / 7, 4)
    assert stats["skipped"] == 6


def test_a_campaign_on_a_red_number_pauses_with_an_alert(client, admin_headers, template, audience, db_session):
    campaign = _campaign(client, admin_headers, template)
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"], 2)
    db_session.execute(select(WhatsAppNumber)).scalar_one().quality_rating = "RED"
    db_session.flush()
    assert _turns(campaign["id"])[0].outcome == "paused"
    body = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=admin_headers).get_json()
    assert (body["status"], body["pause_reason"]) == ("paused", "quality_red")
    alerts = client.get("/api/v1/alerts?kind=campaign_paused", headers=admin_headers).get_json()["items"]
    assert len(alerts) == 1
    assert db_session.get(Campaign, campaign["id"]).status == CampaignStatus.paused


def test_a_trial_that_expires_pauses_the_campaign(client, admin_headers, template, audience, db_session, organization):
    campaign = _campaign(client, admin_headers, template)
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"])
    organization.subscription_status = SubscriptionStatus.expired
    db_session.flush()
    assert _turns(campaign["id"])[0].outcome == "paused"
    assert _campaign_messages(db_session, campaign["id"]) == []
    body = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=admin_headers).get_json()
    assert (body["status"], body["pause_reason"]) == ("paused", "trial_expired")


def test_a_scheduled_campaign_starts_when_beat_finds_it_due(client, admin_headers, template, audience, db_session,
                                                           organization, published):
    from shared.services import campaigns

    organization.timezone = "America/Sao_Paulo"
    db_session.flush()
    campaign = _campaign(client, admin_headers, template)
    local = (utcnow() + dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=-3))).replace(tzinfo=None)
    response = client.post(f"/api/v1/campaigns/{campaign['id']}/schedule",
                           json={"scheduled_at": local.isoformat(timespec="seconds")}, headers=admin_headers)
    assert response.status_code == 200
    scheduled = dt.datetime.fromisoformat(response.get_json()["scheduled_at"])
    assert abs((scheduled - (utcnow() + dt.timedelta(hours=1))).total_seconds()) < 2  # read as São Paulo time
    assert campaigns.due_to_start(db_session) == []
    db_session.get(Campaign, campaign["id"]).scheduled_at = utcnow() - dt.timedelta(seconds=1)
    db_session.flush()
    due = campaigns.due_to_start(db_session)
    assert [str(c) for c, _ in due] == [campaign["id"]]
    assert campaigns.start_scheduled(db_session, org_id=organization.id, campaign_id=due[0][0]) == "started"
    assert campaigns.start_scheduled(db_session, org_id=organization.id, campaign_id=due[0][0]) == "gone"
    assert db_session.get(Campaign, campaign["id"]).status == CampaignStatus.running


def test_a_list_audience_counts_its_duplicate_and_invalid_rows_in_the_preflight_and_sends_once_per_person(
        client, admin_headers, template, audience, db_session, organization):
    import io

    from shared.queueing.names import IMPORT_CONTACTS
    from shared.services import contact_import
    from shared.services.jobs import create_job

    people = audience["eligible"]
    rows = ["phone", people[0].phone_e164, people[1].phone_e164, people[1].phone_e164[1:],  # a repeat, other spelling
            "not a phone", audience["suppressed"]["opted_out"].phone_e164]
    record = contact_import.create_import(db_session, org_id=organization.id, filename="list.csv",
                                          stream=io.BytesIO("\n".join(rows).encode()), created_by_id=None)
    job, _ = create_job(db_session, org_id=organization.id, kind="contacts.import", task_name=IMPORT_CONTACTS,
                        params={"import_id": str(record.id), "columns": {"phone": "phone"}, "mode": "skip_existing"})
    record.job_id = job.id
    db_session.flush()
    campaign = _campaign(client, admin_headers, template, audience={"type": "list", "import_id": str(record.id)})
    report = client.get(f"/api/v1/campaigns/{campaign['id']}/preflight", headers=admin_headers).get_json()
    reasons = {k: v for k, v in report["recipients"]["suppressed_by_reason"].items() if v}
    assert report["recipients"]["eligible"] == 2
    assert reasons == {"duplicate": 1, "invalid_phone": 1, "opted_out": 1}
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"], 2)
    assert sorted(m.contact_id for m in _campaign_messages(db_session, campaign["id"])) == sorted(
        [people[0].id, people[1].id])
    body = client.get(f"/api/v1/campaigns/{campaign['id']}", headers=admin_headers).get_json()
    assert (body["recipients_total"], body["suppressed_total"]) == (3, 3)


def test_after_a_130429_the_number_is_claimed_and_booked_at_a_slower_pace_under_the_same_throughput(
        client, admin_headers, template, audience, db_session):
    from shared import ratelimit

    campaign = _campaign(client, admin_headers, template)
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    _turns(campaign["id"], 2)
    number_id = db_session.execute(select(WhatsAppNumber.id)).scalar_one()
    try:
        ratelimit.slow_down(str(number_id))
        with unit_of_work() as session:
            batch = sending.claim_batch(session, number_id=number_id, max_batch=200, horizon_seconds=0.05)
        # Meta's one-second window (the pacer's) stays the number's throughput; slots and batch size follow the pace
        assert batch.throughput_mps == 80
        assert batch.pace_mps == pytest.approx(80 * ratelimit.PACE_SLOWDOWN, rel=0.05)
        assert len(batch.items) == int(batch.pace_mps * 0.05)
    finally:
        get_redis().delete(ratelimit.pace_key(str(number_id)))


def test_a_running_campaign_can_be_renamed_after_meta_paused_its_template(client, admin_headers, template, audience,
                                                                         db_session):
    campaign = _campaign(client, admin_headers, template)
    client.post(f"/api/v1/campaigns/{campaign['id']}/start", headers=admin_headers)
    template.status = "PAUSED"
    db_session.flush()
    renamed = client.patch(f"/api/v1/campaigns/{campaign['id']}", json={"name": "Spring sale (paused by Meta)"},
                           headers=admin_headers)
    assert renamed.status_code == 200, renamed.get_json()
    assert renamed.get_json()["name"] == "Spring sale (paused by Meta)"


def test_an_authentication_campaign_skips_a_utility_opt_out_before_the_send_would_refuse_it(
        client, admin_headers, template, audience, db_session):
    template.category = "AUTHENTICATION"
    audience["eligible"][0].utility_consent = ConsentState.opted_out
    db_session.flush()
    campaign = _campaign(client, admin_headers, template, variables={"body": [{"source": "literal", "value": "4821"}]})
    report = client.get(f"/api/v1/campaigns/{campaign['id']}/preflight", headers=admin_headers).get_json()
    assert report["recipients"]["suppressed_by_reason"]["opted_out"] == 1  # marketing opt-outs do not count here
