"""Organizations, plans and limits, trials, suspension, and super_admin acting on a tenant."""

import datetime as dt

import pytest
from sqlalchemy import select

from shared import events
from shared.errors import OrganizationSuspendedError, TrialExpiredError
from shared.models import Organization, SubscriptionStatus
from shared.models.base import utcnow
from shared.services import organizations
from tests.factories import make_org, make_user
from workers.tasks.maintenance import expire_trials_task


@pytest.fixture
def superadmin_headers(db_session, login):
    return login(make_user(db_session, None, role="super_admin"))


def test_org_admin_reads_and_updates_its_own_organization(client, organization, admin_headers):
    url = f"/api/v1/organizations/{organization.id}"
    assert client.get(url, headers=admin_headers).get_json()["name"] == "Acme Ltd"
    response = client.patch(
        url,
        json={"name": "Acme Brasil", "timezone": "America/Sao_Paulo", "default_country": "BR",
              "billing_email": "billing@acme.example", "settings": {"opt_out_keywords": ["SAIR"]}},
        headers=admin_headers,
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert (body["name"], body["timezone"], body["default_country"]) == ("Acme Brasil", "America/Sao_Paulo", "BR")


@pytest.mark.parametrize(
    "change,field", [({"timezone": "Mars/Olympus"}, "timezone"), ({"default_country": "XX"}, "default_country")]
)
def test_organization_settings_are_validated(client, organization, admin_headers, change, field):
    response = client.patch(f"/api/v1/organizations/{organization.id}", json=change, headers=admin_headers)
    assert response.status_code == 422 and field in response.get_json()["details"]["errors"]["json"]


def test_an_unsupported_language_is_refused_naming_the_supported_ones(client, organization, admin_headers):
    url = f"/api/v1/organizations/{organization.id}"
    response = client.patch(url, json={"language": "fr"}, headers=admin_headers)
    body = response.get_json()
    assert response.status_code == 422 and body["code"] == "validation_error", body
    assert set(body) == {"code", "message", "details", "request_id"}
    assert body["details"]["errors"]["json"]["language"] == ["Not a supported language; one of: en, es, pt-BR."]
    assert client.get(url, headers=admin_headers).get_json()["language"] == "en"
    ok = client.patch(url, json={"language": "es"}, headers=admin_headers)
    assert ok.status_code == 200 and ok.get_json()["language"] == "es"


@pytest.mark.parametrize("reply,problem", [("   ", "Give the text"), (42, "Give the text"), ("x" * 4097, "At most 4096")])
def test_an_own_keyword_confirmation_must_be_a_sendable_text(client, organization, admin_headers, reply, problem):
    response = client.patch(f"/api/v1/organizations/{organization.id}", json={"settings": {"opt_in_reply": reply}},
                            headers=admin_headers)
    assert response.status_code == 422
    [message] = response.get_json()["details"]["errors"]["json"]["settings"]["opt_in_reply"]
    assert message.startswith(problem)


def test_only_platform_staff_change_the_plan(client, organization, admin_headers, superadmin_headers):
    url = f"/api/v1/organizations/{organization.id}"
    denied = client.patch(url, json={"plan_code": "free"}, headers=admin_headers)
    assert denied.status_code == 403
    allowed = client.patch(url, json={"plan_code": "starter"}, headers=superadmin_headers)
    assert allowed.status_code == 200 and allowed.get_json()["plan_code"] == "starter"
    assert allowed.get_json()["subscription_status"] == "active"  # choosing a plan ends the trial
    trail = events.events_for(org_id=organization.id, subject_type="organization", subject_id=organization.id)
    assert "organizations.plan_changed" in [e["event"] for e in trail]


def test_superadmin_lists_creates_suspends_and_deletes(client, db_session, superadmin_headers, admin, login):
    created = client.post("/api/v1/organizations", json={"name": "New Co", "plan_code": "starter"}, headers=superadmin_headers)
    assert created.status_code == 201
    new_id = created.get_json()["id"]
    listed = client.get("/api/v1/organizations/", headers=superadmin_headers).get_json()
    assert new_id in [org["id"] for org in listed]

    suspended = client.post(
        f"/api/v1/organizations/{admin.organization_id}/suspend", json={"reason": "unpaid"}, headers=superadmin_headers
    )
    assert suspended.get_json()["is_suspended"] is True
    admin_headers = login(admin)
    blocked = client.get("/api/v1/users", headers=admin_headers)
    assert (blocked.status_code, blocked.get_json()["code"]) == (403, "organization_suspended")
    assert client.get("/api/v1/auth/me", headers=admin_headers).status_code == 200  # can still see why
    client.post(f"/api/v1/organizations/{admin.organization_id}/reactivate", headers=superadmin_headers)
    assert client.get("/api/v1/users", headers=admin_headers).status_code == 200

    assert client.delete(f"/api/v1/organizations/{new_id}", headers=superadmin_headers).status_code == 204
    assert client.get(f"/api/v1/organizations/{new_id}", headers=superadmin_headers).status_code == 404


def test_superadmin_acts_on_an_organization_explicitly(client, organization, admin, superadmin_headers):
    without = client.get("/api/v1/users", headers=superadmin_headers)
    assert (without.status_code, without.get_json()["code"]) == (400, "organization_required")
    acting = client.get("/api/v1/users", headers={**superadmin_headers, "X-Organization-Id": str(organization.id)})
    assert acting.status_code == 200
    assert [u["id"] for u in acting.get_json()] == [str(admin.id)]
    unknown = client.get(
        "/api/v1/users", headers={**superadmin_headers, "X-Organization-Id": "00000000-0000-4000-8000-000000000000"}
    )
    assert unknown.status_code == 404


def test_usage_against_the_plans_limits(client, db_session, admin_headers, organization):
    organization.plan_code = "starter"
    db_session.flush()
    make_user(db_session, organization, role="agent")
    body = client.get(f"/api/v1/organizations/{organization.id}/usage", headers=admin_headers).get_json()
    assert body["plan"]["code"] == "starter"
    assert body["resources"]["users"] == {"used": 2, "limit": 10, "remaining": 8, "counted": True}
    assert set(body["resources"]) == {"users", "whatsapp_numbers", "contacts", "monthly_messages"}


def test_the_plan_limit_is_a_403_naming_limit_and_usage(client, db_session, login):
    org = make_org(db_session, plan_code="free")  # 3 users
    admin = make_user(db_session, org, role="org_admin")
    headers = login(admin)
    for n in range(2):
        created = client.post(
            "/api/v1/users", json={"email": f"a{n}@free.example", "password": "Password123!", "full_name": "A"},
            headers=headers,
        )
        assert created.status_code == 201, created.get_json()
    over = client.post(
        "/api/v1/users", json={"email": "a3@free.example", "password": "Password123!", "full_name": "A"},
        headers=headers,
    )
    body = over.get_json()
    assert (over.status_code, body["code"]) == (403, "plan_limit_exceeded")
    assert body["details"] == {"resource": "users", "limit": 3, "current_usage": 3, "requested": 1, "plan": "free"}


def test_plans_are_data_that_platform_staff_change_without_code(client, superadmin_headers, admin_headers):
    plans = {p["code"]: p for p in client.get("/api/v1/plans", headers=admin_headers).get_json()}
    assert set(plans) == {"free", "starter", "professional", "enterprise"}
    assert plans["enterprise"]["max_users"] is None
    changed = client.patch("/api/v1/plans/free", json={"max_users": 5}, headers=superadmin_headers)
    assert changed.get_json()["max_users"] == 5
    assert client.patch("/api/v1/plans/free", json={"max_users": 6}, headers=admin_headers).status_code == 403
    assert client.patch("/api/v1/plans/gold", json={"max_users": 6}, headers=superadmin_headers).status_code == 404


def test_trial_expiry_through_the_beat_task_happens_exactly_once(db_session, migrated):
    ended = make_org(db_session, plan_code="starter", trial_ends_at=utcnow() - dt.timedelta(minutes=1))
    running = make_org(db_session, plan_code="starter", trial_ends_at=utcnow() + dt.timedelta(days=3))
    expire_trials_task.run()
    expire_trials_task.run()  # a second beat, or a redelivery

    db_session.expire_all()
    statuses = dict(
        db_session.execute(select(Organization.id, Organization.subscription_status).where(
            Organization.id.in_([ended.id, running.id])
        )).all()
    )
    assert statuses == {ended.id: SubscriptionStatus.expired, running.id: SubscriptionStatus.trialing}
    trail = events.events_for(org_id=ended.id, subject_type="organization", subject_id=ended.id)
    assert [e["event"] for e in trail].count("organizations.trial_expired") == 1


def test_an_expired_organization_reads_but_cannot_send_until_it_picks_a_plan(client, db_session, login):
    org = make_org(db_session, plan_code="free", subscription_status=SubscriptionStatus.expired)
    headers = login(make_user(db_session, org, role="org_admin"))
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    with pytest.raises(TrialExpiredError):
        organizations.ensure_can_send(db_session, org_id=org.id)
    organizations.update_organization(db_session, org_id=org.id, changes={"plan_code": "starter"}, actor_id=None)
    organizations.ensure_can_send(db_session, org_id=org.id)  # no longer raises


def test_a_suspended_organization_cannot_send(db_session):
    org = make_org(db_session)
    organizations.suspend_organization(db_session, org_id=org.id, reason="abuse", actor_id=None)
    with pytest.raises(OrganizationSuspendedError):
        organizations.ensure_can_send(db_session, org_id=org.id)
