"""PyTake against the Cloud API sandbox, end to end: web, a real worker, and the sandbox's signed webhooks.

A template created through PyTake's API is submitted by the worker, approved by the sandbox, and its
status arrives by webhook; a quality downgrade in the sandbox changes the number's rating here; the
template and number syncs bring in what the sandbox (as Meta) says about them.
"""

import pytest
import requests

from shared.db import unit_of_work
from shared.models import NumberStatus, Organization, WhatsAppNumber
from shared.services import numbers, templates
from tests.factories import make_user
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

NUMBER = {"waba_id": "700100200", "phone_number_id": "800100200", "display_phone_number": "15550100200",
          "access_token": "EAAG-sandbox-token-1", "app_secret": "sandbox-app-secret-1"}


@pytest.fixture
def connected(web, sandbox, app):
    """An organization with the number connected in PyTake and registered in the sandbox."""
    with unit_of_work() as session:
        org = Organization(name="Channel Org", plan_code="enterprise")
        session.add(org)
        session.flush()
        admin = make_user(session, org, role="org_admin")
        number = numbers.create_number(session, org=org, **NUMBER)
        org_id, number_id = org.id, number.id
    from web.auth import issue_tokens

    with app.app_context():
        token = issue_tokens(admin)["access_token"]
    requests.post(f"{sandbox}/_sandbox/numbers", json={
        **NUMBER, "callback_url": f"{web}/api/v1/webhooks/whatsapp"}, timeout=5).raise_for_status()
    return {"org_id": org_id, "number_id": number_id, "headers": {"Authorization": f"Bearer {token}"}}


def test_a_template_created_here_is_approved_by_the_sandbox_via_webhook(worker, web, connected):
    response = requests.post(f"{web}/api/v1/templates", headers=connected["headers"], json={
        "number_id": str(connected["number_id"]), "name": "order_update", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way.",
                        "example": {"body_text": [["Ana", "#1042"]]}}],
    }, timeout=10)
    assert response.status_code == 202, response.text
    template_id = response.json()["id"]

    def status():
        with unit_of_work() as session:
            return templates.get_template(session, org_id=connected["org_id"], template_id=template_id).status

    assert wait_for(lambda: status() == "APPROVED", timeout=60, interval=0.3, what="the template's approval")


def test_a_quality_downgrade_in_the_sandbox_changes_the_rating_here(worker, sandbox, connected):
    requests.post(f"{sandbox}/_sandbox/numbers/{NUMBER['phone_number_id']}/quality",
                  json={"quality_rating": "RED"}, timeout=5).raise_for_status()

    def rating():
        with unit_of_work() as session:
            return session.get(WhatsAppNumber, connected["number_id"]).quality_rating

    assert wait_for(lambda: rating() == "RED", timeout=60, interval=0.3, what="the quality update")


def _finished_job(web, headers, response):
    """Wait for the job a 202 answer started; answer it once it has finished."""
    assert response.status_code == 202, response.text
    url = f"{web}/api/v1/jobs/{response.json()['job_id']}"

    def finished():
        job = requests.get(url, headers=headers, timeout=5).json()
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(finished, timeout=60, interval=0.3, what="the job")


def test_template_sync_brings_in_metas_templates_with_status_category_and_quality(worker, web, sandbox, connected):
    body = [{"type": "BODY", "text": "Hi {{1}}, your parcel is at the pick-up point.",
             "example": {"body_text": [["Ana"]]}}]
    for name, category, status, quality in (("parcel_ready", "UTILITY", "APPROVED", "GREEN"),
                                            ("winter_sale", "MARKETING", "PAUSED", "RED"),
                                            ("parcel_late", "UTILITY", "APPROVED", None)):
        seeded = {"waba_id": NUMBER["waba_id"], "name": name, "language": "en_US", "category": category,
                  "status": status, "components": body, **({"quality_score": quality} if quality else {})}
        requests.post(f"{sandbox}/_sandbox/templates", json=seeded, timeout=5).raise_for_status()
    listed = requests.get(f"{sandbox}/_sandbox/templates", params={"waba_id": NUMBER["waba_id"]}, timeout=5).json()
    meta_ids = {t["name"]: t["id"] for t in listed["data"]}

    job = _finished_job(web, connected["headers"], requests.post(
        f"{web}/api/v1/templates/sync", headers=connected["headers"],
        json={"number_id": str(connected["number_id"])}, timeout=10))
    assert job["status"] == "succeeded", job

    with unit_of_work() as session:
        synced = {t.name: (t.category, t.status, t.quality_score, t.meta_template_id, t.components)
                  for t in templates.list_templates(session, org_id=connected["org_id"])}
    assert synced["parcel_ready"] == ("UTILITY", "APPROVED", "GREEN", meta_ids["parcel_ready"], body)
    assert synced["winter_sale"] == ("MARKETING", "PAUSED", "RED", meta_ids["winter_sale"], body)
    assert synced["parcel_late"] == ("UTILITY", "APPROVED", "UNKNOWN", meta_ids["parcel_late"], body)


def test_number_sync_brings_in_tier_quality_name_and_status(worker, web, sandbox, connected):
    requests.patch(f"{sandbox}/_sandbox/numbers/{NUMBER['phone_number_id']}", json={
        "verified_name": "Lucky Shrub", "quality_rating": "YELLOW", "messaging_limit_tier": "TIER_10K",
        "status": "FLAGGED"}, timeout=5).raise_for_status()
    with unit_of_work() as session:
        before = session.get(WhatsAppNumber, connected["number_id"])
        assert (before.messaging_limit_tier, before.verified_name, before.status) == (None, None, NumberStatus.connected)

    job = _finished_job(web, connected["headers"], requests.post(
        f"{web}/api/v1/numbers/{connected['number_id']}/sync", headers=connected["headers"], timeout=10))
    assert job["status"] == "succeeded", job

    with unit_of_work() as session:
        number = session.get(WhatsAppNumber, connected["number_id"])
        assert (number.messaging_limit_tier, number.quality_rating, number.verified_name, number.status) == (
            "TIER_10K", "YELLOW", "Lucky Shrub", NumberStatus.flagged)
        assert number.last_synced_at is not None and number.last_sync_error is None
    assert job["result"]["messaging_limit_tier"] == "TIER_10K"
