"""Alerts: raised once per cause by the pipelines, read and acknowledged by org admins through the API."""

from __future__ import annotations

from sqlalchemy import select

from shared import events
from shared.models import MessageTemplate
from shared.services import send_outcomes
from tests.factories import make_user
from tests.unit.test_conversations import deliver, number  # noqa: F401
from tests.unit.test_whatsapp_channel import NUMBER, envelope


def _rejection(event="REJECTED"):
    return envelope("message_template_status_update", {
        "event": event, "message_template_id": 7771, "message_template_name": "spring_sale",
        "message_template_language": "en_US", "reason": "PROMOTIONAL",
        "rejection_info": {"reason": "Looks like spam", "recommendation": "Tone it down"}})


def test_a_rejected_template_raises_one_alert_that_an_admin_reads_and_acknowledges(deliver, db_session, client,
                                                                                   organization, admin_headers,
                                                                                   login):
    db_session.add(MessageTemplate(organization_id=organization.id, waba_id=NUMBER["waba_id"], name="spring_sale",
                                   language="en_US", category="MARKETING", status="PENDING", meta_template_id="7771",
                                   components=[{"type": "BODY", "text": "Hello"}]))
    db_session.flush()
    deliver(_rejection())
    deliver({**_rejection(), "again": True})  # Meta repeats it in new bytes: one alert, two occurrences

    listed = client.get("/api/v1/alerts?acknowledged=false", headers=admin_headers)
    assert listed.status_code == 200, listed.get_json()
    (alert,) = listed.get_json()["items"]
    assert (alert["kind"], alert["subject_type"], alert["occurrences"]) == ("template_rejected", "template", 2)
    assert "PROMOTIONAL" in alert["message"]
    template_id = alert["subject_id"]
    trail = events.events_for(org_id=organization.id, subject_type="template", subject_id=template_id)
    assert [e["event"] for e in trail].count("alert.created") == 1

    agent = make_user(db_session, organization, role="agent")
    assert client.get("/api/v1/alerts", headers=login(agent)).status_code == 403

    seen = client.post(f"/api/v1/alerts/{alert['id']}/acknowledge", headers=admin_headers)
    assert seen.status_code == 200 and seen.get_json()["acknowledged_at"]
    assert client.get("/api/v1/alerts?acknowledged=false", headers=admin_headers).get_json()["items"] == []
    deliver({**_rejection(), "once more": True})  # the same cause after it was seen: a new alert
    open_now = client.get("/api/v1/alerts?acknowledged=false&kind=template_rejected",
                          headers=admin_headers).get_json()["items"]
    assert [a["occurrences"] for a in open_now] == [1] and open_now[0]["id"] != alert["id"]


def test_each_cause_raises_its_alert_and_pages_are_newest_first(deliver, db_session, client, organization,
                                                                 admin_headers, number):
    deliver(envelope("phone_number_quality_update", {
        "display_phone_number": NUMBER["display_phone_number"], "event": "FLAGGED", "current_limit": "TIER_250"}))
    deliver(envelope("account_update", {"event": "ACCOUNT_RESTRICTION", "restriction_info": [
        {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING", "expiration": 1893456000}]}))
    send_outcomes.pause_number(db_session, number_id=number["id"], reason="(190) access token expired")
    db_session.flush()
    first = client.get("/api/v1/alerts?limit=2", headers=admin_headers).get_json()
    rest = client.get(f"/api/v1/alerts?limit=2&cursor={first['next_cursor']}", headers=admin_headers).get_json()
    kinds = [a["kind"] for a in first["items"] + rest["items"]]
    assert sorted(kinds) == ["account_restricted", "number_paused", "quality_downgraded"]
    restricted = next(a for a in first["items"] + rest["items"] if a["kind"] == "account_restricted")
    assert restricted["data"]["restriction_info"][0]["restriction_type"] == "RESTRICTED_BIZ_INITIATED_MESSAGING"
    assert client.get("/api/v1/alerts?kind=nonsense", headers=admin_headers).status_code == 422
