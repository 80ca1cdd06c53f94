"""schemathesis over the whole OpenAPI spec, in-process: no answer is a 5xx, and every answer matches what the
spec documents for it (status code, content type, body schema).

Every operation gets a fresh organization with one of each thing its paths name (a contact, a number, a
conversation, a department, a user, a tag, a segment, an attribute, a template, a published chatbot with
its flow, a node and an edge, AI settings), whose ids fill the path
parameters, so the operations reach their real work rather than a 404; and a fresh org_admin, whose token is minted directly (nothing is posted to
/auth/login, and throttles and revocations are flushed between operations, so the login throttle never builds
up), so an operation that ends its own session (logout, a password change, deactivating oneself) spoils only
its own examples. Valid (positive) and invalid (negative) inputs are both generated. The count of operations
that answered a 2xx at least once is printed at the end of the run.

FUZZ_EXAMPLES (default 12) bounds the examples per operation and mode: the pass takes a minute or two.
(One plain test drives the operations: schemathesis' pytest plugin does not work with this pytest.)
"""

from __future__ import annotations

import os

import redis
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from shared.models import AttributeType, MessageTemplate
from shared.services import (
    ai_settings,
    attributes,
    campaigns,
    chatbot_flows,
    chatbot_versions,
    chatbots,
    contacts,
    conversations,
    flow_graph,
    numbers,
    segments,
    tags,
)
from tests import factories
from tests.conftest import app_settings
from tests.fuzz.conftest import ANSWERED

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
# The readiness probe answers 503 by design while a pool is down (none runs here), after waiting on each.
NOT_FUZZED = {"GET /readyz"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _seed(session, organization, n: int) -> dict[str, str]:
    """One of each thing a path names, in this organization: {path parameter: value}."""
    number = numbers.create_number(session, org=organization, waba_id=f"77{n:07d}", phone_number_id=f"88{n:07d}",
                                   display_phone_number=f"1555{n:07d}", access_token="EAAG-fuzz-token",
                                   app_secret="fuzz-secret")
    contact = contacts.create_contact(session, org=organization, phone="+16505550100", name="Fuzz Contact")
    conversation = conversations.get_or_open(session, org_id=organization.id, number_id=number.id,
                                             contact_id=contact.id)
    template = MessageTemplate(organization_id=organization.id, waba_id=number.waba_id, name="fuzz_template",
                               language="en_US", category="UTILITY", status="APPROVED",
                               components=[{"type": "BODY", "text": "Hello"}])
    session.add(template)
    tag = tags.create_tag(session, org_id=organization.id, name="vip")
    ai_settings.save_ai_settings(session, org_id=organization.id, base_url="https://8.8.8.8/v1", model="fuzz-model",
                                 api_key="sk-fuzz-key", actor_id=None)
    session.flush()
    return {
        "org_id": str(organization.id), "code": organization.plan_code, "number_id": str(number.id),
        "contact_id": str(contact.id), "conversation_id": str(conversation.id), "template_id": str(template.id),
        "department_id": str(factories.make_department(session, organization).id),
        "user_id": str(factories.make_user(session, organization, role="agent").id),
        "tag_id": str(tag.id),
        "segment_id": str(segments.create_segment(session, org_id=organization.id, name="VIPs",
                                                  filters={"tags_any": ["vip"]}).id),
        "key": attributes.create_definition(session, org_id=organization.id, key="tier", label="Tier",
                                            type=AttributeType.text).key,
        **_chatbot_seed(session, organization),
        "campaign_id": str(campaigns.create_campaign(session, org=organization, user_id=None, fields={
            "name": "Fuzz campaign", "template_id": template.id, "audience": {"type": "all"}}).id),
    }


def _chatbot_seed(session, organization) -> dict[str, str]:
    """A published chatbot: start → message → end, version 1 in use."""
    chatbot = chatbots.create_chatbot(session, org_id=organization.id, name="Fuzz bot")
    flow = chatbot_flows.create_flow(session, chatbot=chatbot, name="Main")
    node = {"type": "start", "position": {"x": 0, "y": 0}, "data": {"trigger": "any"}}
    flow_graph.replace_graph(session, flow=flow, nodes=[
        {**node, "id": "start"},
        {**node, "id": "hello", "type": "message", "data": {"kind": "text", "text": "Hello"}},
        {**node, "id": "end", "type": "end", "data": {}},
    ], edges=[{"id": "e1", "source": "start", "target": "hello", "sourceHandle": None},
              {"id": "e2", "source": "hello", "target": "end", "sourceHandle": None}])
    version = chatbot_versions.publish_chatbot(session, chatbot=chatbot, published_by_id=None)
    return {"chatbot_id": str(chatbot.id), "flow_id": str(flow.id), "node_id": "hello", "edge_id": "e1",
            "version": str(version.number)}


def _fuzz(operation, headers: dict[str, str], ids: dict[str, str], mode: GenerationMode) -> list[str]:
    failures: list[str] = []
    known = {name: value for name, value in ids.items() if f"{{{name}}}" in operation.path}

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=known or None))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def examples(case):
        case.headers = {**(case.headers or {}), **headers}  # a valid token always (generated ones are not)
        response = case.call()
        ANSWERED.setdefault(operation.label, set()).add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as failure:  # schemathesis' failures: collect, go on
            if len(failures) < 3:
                failures.append(f"{operation.label} [{mode.value}]: {str(failure)[:1500]}")

    try:
        examples()
    except Unsatisfiable:  # nothing to get wrong (no parameters, no body): no negative case exists
        assert mode == GenerationMode.NEGATIVE
    return failures


def test_every_operation_answers_as_documented_and_never_with_a_5xx(app, db_session, published, login):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    flush = redis.Redis.from_url(app_settings(app).redis_url).flushdb
    failures: list[str] = []
    operations = [op for op in (result.ok() for result in schema.get_all_operations()) if op.label not in NOT_FUZZED]
    assert len(operations) > 50
    for n, operation in enumerate(operations):
        organization = factories.make_org(db_session, name=f"Fuzz {operation.label}"[:100], plan_code="enterprise")
        ids = _seed(db_session, organization, n)
        headers = login(factories.make_user(db_session, organization, role="org_admin"))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            flush()
            failures += _fuzz(operation, headers, ids, mode)
    assert not failures, "\n\n".join(failures)
