"""Rows for tests, built directly (no plan checks, no audit): what a test needs to exist."""

from __future__ import annotations

import itertools

from shared.models import Department, Organization, User
from shared.models.base import utcnow
from shared.permissions import Role
from shared.security import hash_password

PASSWORD = "Password123!"
_sequence = itertools.count(1)


def make_org(session, *, name: str | None = None, plan_code: str = "enterprise", **fields) -> Organization:
    org = Organization(name=name or f"Org {next(_sequence)}", plan_code=plan_code, **fields)
    session.add(org)
    session.flush()
    session.refresh(org)
    return org


def make_user(session, org: Organization | None, *, role: str | Role = "agent", email: str | None = None, **fields) -> User:
    role = Role(role)
    user = User(
        organization_id=None if role == Role.super_admin else org.id,
        email=email or f"user{next(_sequence)}@example.com",
        password_hash=hash_password(fields.pop("password", PASSWORD)),
        full_name=fields.pop("full_name", f"{role.value.replace('_', ' ').title()} User"),
        role=role,
        tokens_valid_after=utcnow(),
        **fields,
    )
    session.add(user)
    session.flush()
    session.refresh(user)
    return user


def make_department(session, org: Organization, *, name: str | None = None) -> Department:
    department = Department(organization_id=org.id, name=name or f"Dept {next(_sequence)}")
    session.add(department)
    session.flush()
    session.refresh(department)
    return department


def make_chatbot(session, org: Organization, *, name: str | None = None):
    """A chatbot with a main flow of two joined nodes and a version 1 in use, as rows (no interpreter involved):
    (chatbot, flow, version); the nodes are "seed-start" and "seed-end", the edge "seed-edge"."""
    from shared.models import Chatbot, ChatbotFlow, ChatbotVersion, FlowEdge, FlowNode

    chatbot = Chatbot(organization_id=org.id, name=name or f"Bot {next(_sequence)}", live_version=1)
    session.add(chatbot)
    session.flush()
    flow = ChatbotFlow(organization_id=org.id, chatbot_id=chatbot.id, name="Main", is_main=True)
    session.add(flow)
    session.flush()
    session.add_all([FlowNode(organization_id=org.id, flow_id=flow.id, node_id=node_id, type=node_type,
                              position_x=0.0, position_y=0.0, data={})
                     for node_id, node_type in (("seed-start", "start"), ("seed-end", "end"))])
    session.flush()
    session.add(FlowEdge(organization_id=org.id, flow_id=flow.id, edge_id="seed-edge", source="seed-start",
                         target="seed-end"))
    version = ChatbotVersion(organization_id=org.id, chatbot_id=chatbot.id, number=1, published_at=utcnow(),
                             content={"chatbot_id": str(chatbot.id), "main_flow_id": str(flow.id), "flows": {},
                                      "variables": {}})
    session.add(version)
    session.flush()
    return chatbot, flow, version
