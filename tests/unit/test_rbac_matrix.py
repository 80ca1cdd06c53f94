"""Every API endpoint × every role → the status the permission table says.

Built from the app's own routes and shared/permissions.py, so an endpoint added later
joins the matrix without anyone editing this file: it only has to declare its permission.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from shared.models import Job
from shared.permissions import Permission, Role, has_permission
from shared.services import jobs
from tests.factories import make_chatbot, make_department, make_org, make_user
from web import create_app
from web.auth import AUTHENTICATED, PUBLIC, REFRESH, endpoint_requirement

API_PREFIX = "/api/v1"


def api_endpoints():
    app = create_app()
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API_PREFIX):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, rule.rule, endpoint_requirement(app, rule.endpoint, method)))
    return sorted(found)


ENDPOINTS = api_endpoints()
ROLES = list(Role)


def test_every_api_endpoint_declares_what_it_requires():
    undeclared = [f"{method} {path}" for method, path, requirement in ENDPOINTS if requirement is None]
    assert undeclared == []
    assert len(ENDPOINTS) >= 30


@pytest.fixture
def world(db_session):
    """One organization with one of everything an endpoint can name by id."""
    org = make_org(db_session, plan_code="enterprise")
    users = {role: make_user(db_session, org, role=role) for role in ROLES}
    target = make_user(db_session, org, role="agent")
    department = make_department(db_session, org)
    job, _ = jobs.create_job(db_session, org_id=org.id, kind="contacts.export", task_name="maintenance.x")
    from shared.models import Alert
    from shared.services import alerts

    alerts.raise_alert(db_session, org_id=org.id, kind="number_paused", subject_type="number", subject_id=org.id,
                       message="Matrix")
    alert_id = db_session.execute(select(Alert.id).where(Alert.organization_id == org.id)).scalar_one()
    ids = {
        "org_id": org.id,
        "user_id": target.id,
        "department_id": department.id,
        "job_id": job.id,
        "alert_id": alert_id,
        "code": "starter",
        **tenant_rows(db_session, org),
    }
    return org, users, ids


def tenant_rows(session, org) -> dict:
    """One contact-side row of each kind an endpoint can name by id."""
    import io

    from shared.models import AttributeType
    from shared.services import attributes, contact_import, contacts, segments, tags
    from shared.storage import signed_download_token

    contact = contacts.create_contact(session, org=org, phone=f"+1650555{next(_phones):04d}", name="Matrix")
    tag = tags.create_tag(session, org_id=org.id, name=f"matrix-{org.id.hex[:6]}")
    segment = segments.create_segment(session, org_id=org.id, name="Matrix", filters={"q": "Matrix"})
    attributes.create_definition(session, org_id=org.id, key="plan", label="Plan", type=AttributeType.text)
    upload = contact_import.create_import(
        session, org_id=org.id, filename="m.csv", stream=io.BytesIO(b"phone\n+16505550000\n"), created_by_id=None
    )
    from shared.models import MessageTemplate
    from shared.services import numbers

    number = numbers.create_number(
        session, org=org, phone_number_id=f"77{org.id.int % 10**10}", waba_id="1234567", display_phone_number="15550001",
        access_token="EAAG-matrix-token", app_secret="matrix-secret",
    )
    template = MessageTemplate(organization_id=org.id, waba_id="1234567", name="matrix", language="en_US",
                               category="UTILITY", status="APPROVED",
                               components=[{"type": "BODY", "text": "Hello"}])
    session.add(template)
    session.flush()
    from shared.models import Campaign

    campaign = Campaign(organization_id=org.id, name="Matrix", template_id=template.id, number_ids=[number.id],
                        audience={"type": "all"}, variables={})
    session.add(campaign)
    session.flush()
    conversation, message = conversation_rows(session, org, number, contact)
    chatbot, flow, version = make_chatbot(session, org)
    from shared.services import ai_settings

    ai = ai_settings.save_ai_settings(session, org_id=org.id, base_url="https://8.8.8.8/v1",
                                      model=f"matrix-model-{org.id.hex[:8]}", api_key="sk-matrix-key", actor_id=None)
    return {
        "ai_model": ai.model,  # no id names it; its model must not show in another organization's answers
        "campaign_id": campaign.id,
        "chatbot_id": chatbot.id,
        "flow_id": flow.id,
        "node_id": "seed-start",
        "edge_id": "seed-edge",
        "version": version.number,
        "conversation_id": conversation.id,
        "message_id": message.id,
        "number_id": number.id,
        "template_id": template.id,
        "contact_id": contact.id,
        "tag_id": tag.id,
        "segment_id": segment.id,
        "key": "plan",
        "import_id": upload.id,
        "token": signed_download_token(upload.file_key, "m.csv"),
    }


def conversation_rows(session, org, number, contact):
    """A conversation with one inbound message, its window open."""
    import datetime as dt

    from shared.models import Direction, Message, MessageStatus, SenderType
    from shared.models.base import utcnow
    from shared.services import conversations

    conversation = conversations.get_or_open(session, org_id=org.id, number_id=number.id, contact_id=contact.id)
    now = utcnow()
    message = Message(organization_id=org.id, conversation_id=conversation.id, contact_id=contact.id,
                      number_id=number.id, direction=Direction.inbound, type="text", content={"body": "Hi"},
                      wamid=f"wamid.matrix-{org.id.hex}", status=MessageStatus.received,
                      sender_type=SenderType.customer, occurred_at=now)
    session.add(message)
    conversation.window_expires_at = now + dt.timedelta(hours=24)
    conversation.last_message_at = now
    session.flush()
    return conversation, message


_phones = iter(range(1000, 9999))


def fill(path: str, ids: dict) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), path)


# Bodies that pass validation, for the endpoints where an empty one would not: so the test
# reaches the lookup it means to check instead of stopping at a 422.
VALID_BODIES = {
    "/lead-score": {"delta": 1},
    "/preview": {"columns": {"phone": "phone"}},
    "/start": {"columns": {"phone": "phone"}},
    "/render": {"variables": {}},
    "/messages": {"type": "text", "text": {"body": "Hello from the matrix"}},
    "/flows": {"name": "Matrix flow"},
    "/nodes": {"id": "matrix-node", "type": "end", "position": {"x": 0, "y": 0}},
    "/edges": {"id": "matrix-edge", "source": "seed-start", "target": "seed-end"},
    "/graph": {"nodes": [], "edges": []},
    "/rollback": {"version": 1},
    "/simulate": {"messages": []},
    "/schedule": {"scheduled_at": "2099-01-01T09:00:00"},
    "/ai-settings/": {"base_url": "https://8.8.8.8/v1", "model": "matrix-model"},
}


def call(client, method, url, headers):
    if method not in {"POST", "PUT", "PATCH"}:
        return client.open(url, method=method, headers=headers)
    body = next((b for suffix, b in VALID_BODIES.items() if url.endswith(suffix)), {})
    return client.open(url, method=method, headers=headers, json=body)


def expected_allowed(role: Role, requirement) -> bool:
    if requirement in (PUBLIC, AUTHENTICATED, REFRESH):
        return True
    return has_permission(role, Permission(requirement))


@pytest.mark.parametrize("method,path,requirement", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
@pytest.mark.parametrize("role", ROLES, ids=[r.value for r in ROLES])
def test_role_gets_what_the_permission_table_says(client, app, world, method, path, requirement, role):
    org, users, ids = world
    user = users[role]
    from web.auth import issue_tokens

    with app.app_context():
        tokens = issue_tokens(user)
    token = tokens["refresh_token"] if requirement == REFRESH else tokens["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    if role == Role.super_admin:
        headers["X-Organization-Id"] = str(org.id)

    response = call(client, method, fill(path, ids), headers)
    if requirement == PUBLIC:  # no role involved; such endpoints check their own credentials (signatures, links)
        assert response.status_code < 500
    elif expected_allowed(role, requirement):
        assert response.status_code not in (401, 403), response.get_json()
        assert response.status_code < 500
    else:
        assert response.status_code == 403, response.get_json()
        assert response.get_json()["code"] == "permission_denied"


@pytest.mark.parametrize("method,path,requirement", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_no_token_is_401_except_on_public_endpoints(client, world, method, path, requirement):
    _, _, ids = world
    response = call(client, method, fill(path, ids), {})
    if requirement == PUBLIC:
        assert response.status_code != 401
    else:
        assert response.status_code == 401
        assert response.get_json()["code"] == "unauthorized"
