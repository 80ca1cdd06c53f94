"""Each node type's own rules, as the API applies them when a node is saved."""

import pytest

from shared import flows
from tests.unit.flow_builders import node

LIST = {"button": "Slots", "sections": [{"title": "Mon", "rows": [{"id": "mon_9", "title": "09:00"}]}]}

VALID = [
    node("s1", "start", trigger="keyword", keywords=["hi", "olá"]),
    node("s2", "start", trigger="any"),
    node("s3", "start", trigger="ad", ad_id="120208"),
    node("s4", "start", trigger="template_button", payload="STOP_PROMOS"),
    node("m1", "message", kind="text", text="Hi {{contact.name}}"),
    node("m2", "message", kind="image", link="https://example.com/a.jpg", caption="Our menu"),
    node("m3", "message", kind="template", template_id="0b0e", variables={"1": "{{vars.order}}"}),
    node("m4", "message", kind="buttons", text="Pick", buttons=[{"id": "a", "title": "A"}, {"id": "b", "title": "B"}]),
    node("m5", "message", kind="list", text="Pick a slot", list=LIST),
    node("q1", "question", text="Your email?", answer_type="email", variable="email", timeout_seconds=3600),
    node("q2", "question", text="Pick", answer_type="choice", variable="slot", list=LIST, retry_limit=0),
    node("q3", "question", text="How many?", answer_type="number", variable="n", min=1, max=10),
    node("c1", "condition", branches=[{"id": "adult", "expression": "vars.age >= 18"}]),
    node("a1", "action", actions=[
        {"type": "set_variable", "name": "step", "value": "paid"}, {"type": "tag", "tag": "vip"},
        {"type": "untag", "tag": "cold"}, {"type": "set_lifecycle_stage", "stage": "customer"},
        {"type": "change_lead_score", "delta": -5}, {"type": "opt_in"}, {"type": "opt_out", "category": "utility"},
        {"type": "set_attribute", "name": "tier", "value": "gold"},
        {"type": "assign_department", "department_id": "d-1"}, {"type": "close_conversation"}]),
    node("p1", "api_call", method="POST", url="https://api.example.com/orders/{{vars.order}}",
         headers={"Authorization": "Bearer x"}, body={"id": "{{vars.order}}"}, timeout_seconds=5,
         mappings=[{"path": "$.items[0].name", "variable": "item"}], status_variable="http_status"),
    node("i1", "ai_prompt", prompt="Answer: {{system.last_message}}", variable="answer"),
    node("j1", "jump", node_id="q1"),
    node("j2", "jump", flow_id="f-2"),
    node("e1", "end", message="Bye"),
    node("h1", "handoff", department_id=None, message="An agent will help"),
]


@pytest.mark.parametrize("valid", VALID, ids=lambda n: n["id"])
def test_valid_nodes_have_no_problems(valid):
    assert flows.validate_node(valid) == []


def test_every_node_type_is_covered():
    assert {n["type"] for n in VALID} == set(flows.NODE_TYPES)


INVALID = [
    (node("s", "start", trigger="sometimes"), "trigger"),
    (node("s", "start", trigger="keyword", keywords=[]), "keywords"),
    (node("s", "start", trigger="keyword", keywords=["hi"], match="fuzzy"), "match"),
    (node("s", "start", trigger="ad"), "ad_id"),
    (node("s", "start", trigger="template_button", payload=""), "payload"),
    (node("m", "message", kind="fax", text="x"), "kind"),
    (node("m", "message", kind="text", text=""), "text"),
    (node("m", "message", kind="text", text="Hi {{contact name}}"), "text"),
    (node("m", "message", kind="audio", link="https://x/a.ogg", caption="no captions on audio"), "audio"),
    (node("m", "message", kind="template"), "template"),
    (node("m", "message", kind="buttons", text="Pick", buttons=[{"id": str(i), "title": str(i)} for i in range(4)]),
     "buttons"),
    (node("m", "message", kind="buttons", text="Pick", buttons=[{"id": "a", "title": "A"}, {"id": "a", "title": "B"}]),
     "buttons"),
    (node("m", "message", kind="buttons", text="Pick", buttons=[{"id": "else", "title": "Else"}]), "buttons"),
    (node("m", "message", kind="list", text="Pick", list={"button": "Go", "sections": []}), "list"),
    (node("q", "question", text="Age?", answer_type="age", variable="age"), "answer_type"),
    (node("q", "question", text="Age?", answer_type="number", variable="1age"), "variable"),
    (node("q", "question", text="Age?", answer_type="number", variable="age", retry_limit=99), "retry_limit"),
    (node("q", "question", text="Age?", answer_type="number", variable="age", timeout_seconds=0), "timeout_seconds"),
    (node("q", "question", text="Pick", answer_type="choice", variable="x"), "buttons"),
    (node("q", "question", text="", answer_type="text", variable="x"), "text"),
    (node("c", "condition", branches=[]), "branches"),
    (node("c", "condition", branches=[{"id": "a", "expression": "__import__('os')"}]), "branches[0].expression"),
    (node("c", "condition", branches=[{"id": "a", "expression": "true"}, {"id": "a", "expression": "true"}]),
     "branches[1].id"),
    (node("a", "action", actions=[{"type": "launch_rockets"}]), "actions[0].type"),
    (node("a", "action", actions=[{"type": "tag"}]), "actions[0].tag"),
    (node("a", "action", actions=[{"type": "change_lead_score", "delta": "ten"}]), "actions[0].delta"),
    (node("a", "action", actions=[{"type": "opt_out", "category": "everything"}]), "actions[0].category"),
    (node("a", "action", actions=[{"type": "set_variable", "name": "x"}]), "actions[0].value"),
    (node("a", "action", actions=[]), "actions"),
    (node("p", "api_call", url="ftp://example.com"), "url"),
    (node("p", "api_call", url="https://x", method="TRACE"), "method"),
    (node("p", "api_call", url="https://x", timeout_seconds=600), "timeout_seconds"),
    (node("p", "api_call", url="https://x", mappings=[{"path": "a.b", "variable": "x"}]), "mappings[0].path"),
    (node("i", "ai_prompt", variable="answer"), "prompt"),
    (node("i", "ai_prompt", prompt="Hi"), "variable"),
    (node("j", "jump"), "node_id"),
    (node("h", "handoff", department_id=7), "department_id"),
    (node("e", "end", message=""), "message"),
    ({"id": "x", "type": "teleport", "data": {}}, "type"),
    ({"id": "", "type": "end", "data": {}}, "id"),
    ({"id": "x", "type": "end", "data": {}, "position": {"x": "left"}}, "position"),
    ("not a node", "node"),
]


@pytest.mark.parametrize("invalid,field", INVALID, ids=[f"{n['type'] if isinstance(n, dict) else 'str'}-{f}"
                                                        for n, f in INVALID])
def test_invalid_nodes_name_the_field_at_fault(invalid, field):
    problems = flows.validate_node(invalid)
    assert field in [problem["field"] for problem in problems], problems
    assert all(problem["message"] for problem in problems)


def test_problems_carry_the_node_id():
    assert flows.validate_node(node("q7", "question", text="Age?", answer_type="number", variable="")) == [
        {"node_id": "q7", "field": "variable",
         "message": "variable must be a variable name (letters, digits and _, not starting with a digit)"}]
