"""simulate(): a chatbot run against a scripted customer, with no WhatsApp and no database."""

import json

import pytest

from shared import flows
from tests.unit.flow_builders import NOW, bot, edge, node, six_node_bot


def bot_lines(result):
    lines = []
    for entry in result["transcript"]:
        if entry["from"] == "bot":
            message = entry["message"]
            lines.append(message["text"]["body"] if message["type"] == "text"
                         else message["interactive"]["body"]["text"])
    return lines


def test_a_customer_walks_the_six_node_flow():
    result = flows.simulate(six_node_bot(), [{"type": "text", "text": "Plans!"}, {"type": "button", "id": "pro"}],
                            contact={"name": "Ana", "tags": ["new"]}, now=NOW)
    assert bot_lines(result) == ["Hi Ana!", "Which plan?", "Thanks, pro it is."]
    assert [entry["from"] for entry in result["transcript"]] == ["customer", "bot", "bot", "customer", "bot"]
    assert result["status"] == "ended"
    assert result["variables"] == {"plan": "pro"}
    assert result["actions"] == [{"type": "tag", "tag": "pro-lead"}, {"type": "change_lead_score", "delta": 10}]
    assert result["contact"]["tags"] == ["new", "pro-lead"] and result["contact"]["lead_score"] == 10
    json.dumps(result)  # the endpoint returns it as is


def test_the_free_plan_takes_the_else_branch_untagged():
    result = flows.simulate(six_node_bot(), [{"type": "text", "text": "plans"}, {"type": "button", "id": "free"}],
                            now=NOW)
    assert bot_lines(result) == ["Hi there!", "Which plan?", "Thanks, free it is."]
    assert result["actions"] == []


def test_a_message_matching_no_trigger_starts_nothing():
    result = flows.simulate(six_node_bot(), [{"type": "text", "text": "hello"}], now=NOW)
    assert result["status"] == "not_started"
    assert bot_lines(result) == []


def test_a_silent_customer_takes_the_timeout_branch():
    result = flows.simulate(six_node_bot(), [{"type": "text", "text": "plans"}, {"type": "timeout"},
                                             {"type": "button", "id": "pro"}], now=NOW)
    assert bot_lines(result) == ["Hi there!", "Which plan?", "No answer, talk soon."]
    assert result["status"] == "ended"


def test_invalid_answers_reach_the_retry_limit_branch():
    result = flows.simulate(six_node_bot(), [{"type": "text", "text": "plans"}, {"type": "text", "text": "Pro"},
                                             {"type": "text", "text": "pro please"}], now=NOW)
    assert bot_lines(result) == ["Hi there!", "Which plan?", "Please tap Pro or Free",
                                 "An agent will take it from here."]
    assert result["status"] == "handoff"
    assert result["actions"] == [{"type": "handoff", "department_id": "sales"}]


def api_bot():
    return bot(
        [node("start", "start", trigger="any"),
         node("lookup", "api_call", url="https://shop.example/orders/{{system.last_message}}",
              mappings=[{"path": "$.order.items[0].name", "variable": "item"}], status_variable="status"),
         node("found", "end", message="Your {{vars.item}} is on its way."),
         node("sorry", "handoff", department_id=None, message="Let me find someone.")],
        [edge("start", "lookup"), edge("lookup", "found", "success"), edge("lookup", "sorry", "failure")],
    )


def test_api_calls_fail_in_a_simulation_unless_the_caller_answers_them():
    failed = flows.simulate(api_bot(), [{"type": "text", "text": "A-17"}], now=NOW)
    assert bot_lines(failed) == ["Let me find someone."]
    assert failed["status"] == "handoff"
    assert failed["actions"][0]["url"] == "https://shop.example/orders/A-17"

    calls = []

    def shop(action):
        calls.append(action)
        return {"ok": True, "status": 200, "json": {"order": {"items": [{"name": "blue kettle"}]}}}

    answered = flows.simulate(api_bot(), [{"type": "text", "text": "A-17"}], now=NOW, call_api=shop)
    assert bot_lines(answered) == ["Your blue kettle is on its way."]
    assert answered["variables"] == {"item": "blue kettle", "status": 200}
    assert [call["url"] for call in calls] == ["https://shop.example/orders/A-17"]


def test_a_chatbot_with_problems_is_not_run_and_its_problems_come_back():
    broken = six_node_bot()
    broken["flows"]["main"]["edges"].append(edge("end", "hello"))
    result = flows.simulate(broken, [{"type": "text", "text": "plans"}], now=NOW)
    assert result["status"] == "invalid" and result["transcript"] == []
    assert [p["node_id"] for p in result["problems"]] == ["end"]


@pytest.mark.parametrize("script", [
    "plans", [{"type": "text"}], [{"type": "text", "text": 5}], [{"type": "button"}], [{"type": "voice"}], ["hi"],
    [{"type": "text", "text": "plans", "after_seconds": -1}],
])
def test_a_script_it_cannot_play_is_refused_with_the_reason(script):
    with pytest.raises(flows.ScriptError):
        flows.simulate(six_node_bot(), script, now=NOW)


def test_time_passes_between_scripted_messages():
    late = flows.simulate(six_node_bot(), [{"type": "text", "text": "plans"},
                                           {"type": "button", "id": "pro", "after_seconds": 3600},
                                           {"type": "timeout"}], now=NOW)
    assert bot_lines(late)[-1] == "Thanks, pro it is."  # an answer beat the timeout event: it is still an answer


def test_an_empty_text_is_played_as_an_invalid_answer():
    result = flows.simulate(six_node_bot(), [{"type": "text", "text": "plans"}, {"type": "text", "text": ""}], now=NOW)
    assert bot_lines(result)[-1] == "Please tap Pro or Free"
