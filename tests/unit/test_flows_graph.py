"""validate_bot: what publishing refuses, every problem listed at once."""

from shared import flows
from tests.unit.flow_builders import bot, edge, node, six_node_bot


def test_the_six_node_bot_is_publishable():
    assert flows.validate_bot(six_node_bot()) == []


def broken_bot():
    return bot(
        [
            node("start", "start", trigger="keyword", keywords=["Olá"]),
            node("start2", "start", trigger="keyword", keywords=["ola!"]),  # the same keyword, once normalized
            node("pick", "question", text="Pick", answer_type="choice", variable="x",
                 buttons=[{"id": "a", "title": "A"}, {"id": "b", "title": "B"}], timeout_seconds=60),
            node("check", "condition", branches=[{"id": "yes", "expression": "vars.x == 'a'"}]),
            node("orphan", "message", kind="text", text="nobody gets here"),
            node("loop1", "action", actions=[{"type": "tag", "tag": "t"}]),
            node("loop2", "jump", node_id="loop1"),
            node("bad", "message", kind="text", text=""),
            node("call", "api_call", url="https://example.com"),
        ],
        [
            edge("start", "pick"), edge("start2", "bad"), edge("pick", "check", "a"),
            edge("check", "loop1", "yes"), edge("loop1", "loop2"), edge("orphan", "ghost"),
            edge("bad", "call"), edge("call", "start", "success"), edge("bad", "pick", "nope"),
        ],
    )


def test_a_broken_bot_gets_every_problem_at_once():
    problems = flows.validate_bot(broken_bot())

    def says(node_id, field, words):
        return any(p["node_id"] == node_id and p["field"] == field and words in p["message"] for p in problems)

    assert says("start2", "trigger", "keyword 'ola' starts more than one node")
    assert says("pick", "edges", "button or row 'b' has no edge")
    assert says("pick", "edges", "no 'timeout' edge")
    assert says("orphan", "edges[5]", "dangling: node 'ghost' does not exist")
    assert says("check", "edges", "'else' edge")
    assert says("orphan", None, "no path from a start node reaches this node")
    assert says("loop1", None, "loop without waiting for the customer: loop1 → loop2 → loop1")
    assert says("bad", "text", "text body is empty")
    assert says("bad", "edges[8].sourceHandle", "handle 'nope'")
    assert says("call", "edges", "'failure' edge")
    assert all(p["flow_id"] == "main" for p in problems)
    assert len(problems) == 10, problems


def test_a_default_edge_handles_every_button():
    choice = six_node_bot()
    assert not [p for p in flows.validate_bot(choice) if p["node_id"] == "ask"]
    choice["flows"]["main"]["edges"] = [e for e in choice["flows"]["main"]["edges"]
                                        if not (e["source"] == "ask" and e["sourceHandle"] is None)]
    messages = [p["message"] for p in flows.validate_bot(choice) if p["node_id"] == "ask"]
    assert messages == ["button or row 'pro' has no edge and there is no default edge",
                        "button or row 'free' has no edge and there is no default edge"]


def test_a_loop_through_a_question_is_allowed():
    again = bot(
        [node("start", "start", trigger="any"), node("ask", "question", text="More?", variable="more"),
         node("again", "jump", node_id="ask")],
        [edge("start", "ask"), edge("ask", "again")],
    )
    assert flows.validate_bot(again) == []


def test_jumps_reach_other_flows_and_a_missing_target_is_a_problem():
    other = {"faq": {"name": "FAQ", "variables": {}, "nodes": [node("faq_start", "start", trigger="keyword",
                                                                   keywords=["faq"]),
                                                              node("faq_end", "end")],
                     "edges": [edge("faq_start", "faq_end")]}}
    jumping = bot([node("start", "start", trigger="any"), node("go", "jump", flow_id="faq"),
                   node("lost", "jump", flow_id="faq", node_id="nowhere")],
                  [edge("start", "go")], other_flows=other)
    problems = flows.validate_bot(jumping)
    assert [(p["node_id"], p["message"]) for p in problems] == [
        ("lost", "the jump's target does not exist"), ("lost", "no path from a start node reaches this node")]


def test_a_chatbot_without_flows_or_main_flow_is_refused_not_crashed():
    assert flows.validate_bot({"flows": {}})[0]["field"] == "flows"
    assert flows.validate_bot("nonsense")[0]["field"] == "flows"
    missing_main = six_node_bot()
    missing_main["main_flow_id"] = "elsewhere"
    assert [p["field"] for p in flows.validate_bot(missing_main)] == ["main_flow_id"]
    no_lists = {"main_flow_id": "main", "flows": {"main": {"nodes": "x"}}}
    assert [p["message"] for p in flows.validate_bot(no_lists)] == ["a flow needs lists of nodes and edges"]


def test_malformed_graphs_are_problems_never_crashes():
    junk = bot(
        [node("start", "start", trigger="any"), {"id": ["x"], "type": "end", "data": {}},
         {"id": "d", "type": "condition", "data": 7}, node("m", "message", kind="text", text="hi")],
        [edge("start", "m"), {"id": "e", "source": "m", "target": "d", "sourceHandle": {"weird": True}},
         {"id": "e2", "source": ["m"], "target": "d"}, "edge"],
    )
    problems = flows.validate_bot(junk)
    fields = [p["field"] for p in problems]
    assert fields.count("id") == 1 and "data" in fields and "edges[1]" in fields and "edges[3]" in fields
