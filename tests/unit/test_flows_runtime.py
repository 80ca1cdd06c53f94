"""start/step: the session a bots pool would run, one event at a time, through JSON-stored state."""

import datetime as dt
import json

import pytest

from shared import flows
from tests.unit.flow_builders import NOW, bot, edge, node, six_node_bot, texts


def context(minutes=0, **extra):
    return {"now": NOW + dt.timedelta(minutes=minutes), "contact": {"name": "Ana"}, **extra}


def stored(result):
    """The state as the database would give it back."""
    return json.loads(json.dumps(result["state"]))


def started(chatbot, text="plans", **extra):
    result = flows.start(chatbot, event={"type": "text", "text": text}, context=context(**extra))
    return result, stored(result)


def test_the_six_node_flow_step_by_step():
    chatbot = six_node_bot()
    first, state = started(chatbot)
    assert texts(first["actions"]) == ["Hi Ana!", "Which plan?"]
    assert first["status"] == "waiting"
    assert [v["node_id"] for v in first["visited"]] == ["start", "hello", "ask"]
    assert first["actions"][1]["message"]["interactive"]["action"]["buttons"][0]["reply"] == {"id": "pro",
                                                                                              "title": "Pro"}

    second = flows.step(chatbot, state, event={"type": "button", "id": "pro", "title": "Pro"}, context=context(1))
    assert second["actions"] == [
        {"type": "tag", "tag": "pro-lead"}, {"type": "change_lead_score", "delta": 10},
        {"type": "send_message", "message": {"type": "text", "text": {"body": "Thanks, pro it is."}}}]
    assert [v["node_id"] for v in second["visited"]] == ["check", "tag", "thanks", "end"]
    assert second["status"] == "ended"
    assert second["state"]["globals"] == {"plan": "pro"}

    after_the_end = flows.step(chatbot, stored(second), event={"type": "text", "text": "hello?"}, context=context(2))
    assert after_the_end["actions"] == [] and after_the_end["state"] == stored(second)


def test_step_does_not_change_the_state_it_was_given():
    chatbot = six_node_bot()
    _, state = started(chatbot)
    before = json.dumps(state, sort_keys=True)
    flows.step(chatbot, state, event={"type": "button", "id": "pro"}, context=context(1))
    assert json.dumps(state, sort_keys=True) == before


def test_a_choice_is_matched_by_id_never_by_title():
    chatbot = six_node_bot()
    _, state = started(chatbot)
    typed_title = flows.step(chatbot, state, event={"type": "text", "text": "Pro"}, context=context(1))
    assert texts(typed_title["actions"]) == ["Please tap Pro or Free"]
    wrong_id = flows.step(chatbot, state, event={"type": "button", "id": "Pro", "title": "Pro"}, context=context(1))
    assert texts(wrong_id["actions"]) == ["Please tap Pro or Free"]


def test_retries_then_the_retry_limit_branch():
    chatbot = six_node_bot(retry_limit=2)
    _, state = started(chatbot)
    for attempt in (1, 2):
        retry = flows.step(chatbot, state, event={"type": "text", "text": "?"}, context=context(attempt))
        assert texts(retry["actions"]) == ["Please tap Pro or Free"]
        assert retry["status"] == "waiting" and retry["state"]["wait"]["retries"] == attempt
        state = stored(retry)
    limit = flows.step(chatbot, state, event={"type": "text", "text": "?"}, context=context(3))
    assert texts(limit["actions"]) == ["An agent will take it from here."]
    assert limit["actions"][-1] == {"type": "handoff", "department_id": "sales"}
    assert limit["status"] == "handoff"


def test_past_the_retry_limit_without_its_edge_the_queue_takes_over():
    chatbot = six_node_bot(retry_limit=0)
    chatbot["flows"]["main"]["edges"] = [e for e in chatbot["flows"]["main"]["edges"]
                                         if e["sourceHandle"] != "retry_limit"]
    _, state = started(chatbot)
    result = flows.step(chatbot, state, event={"type": "text", "text": "?"}, context=context(1))
    assert result["actions"] == [{"type": "handoff", "department_id": None}]


def test_a_retry_gives_the_customer_a_new_deadline():
    chatbot = six_node_bot()
    _, state = started(chatbot)
    retry = flows.step(chatbot, state, event={"type": "text", "text": "?"}, context=context(9))
    assert retry["state"]["wait"]["deadline"] == (NOW + dt.timedelta(minutes=19)).isoformat()
    early = flows.step(chatbot, stored(retry), event={"type": "timeout"}, context=context(11))
    assert early["actions"] == [] and early["status"] == "waiting"


def test_the_timeout_branch_is_taken_exactly_once():
    chatbot = six_node_bot()
    _, state = started(chatbot)
    assert state["wait"]["deadline"] == (NOW + dt.timedelta(minutes=10)).isoformat()

    too_early = flows.step(chatbot, state, event={"type": "timeout"}, context=context(9))
    assert too_early["actions"] == [] and too_early["state"] == state

    timed_out = flows.step(chatbot, state, event={"type": "timeout"}, context=context(10))
    assert texts(timed_out["actions"]) == ["No answer, talk soon."]
    assert timed_out["status"] == "ended"
    state = stored(timed_out)

    again = flows.step(chatbot, state, event={"type": "timeout"}, context=context(11))
    late_answer = flows.step(chatbot, state, event={"type": "button", "id": "pro"}, context=context(12))
    assert again["actions"] == [] and late_answer["actions"] == []
    assert again["state"] == state and late_answer["state"] == state


def test_a_stale_timeout_does_not_fire_the_next_question():
    """The timeout branch asks again: beat's second timeout for the first question is not the new one's."""
    chatbot = bot(
        [node("start", "start", trigger="any"),
         node("q1", "question", text="Name?", variable="name", timeout_seconds=60),
         node("q2", "question", text="Still there?", variable="name", timeout_seconds=60),
         node("bye", "end", message="Bye")],
        [edge("start", "q1"), edge("q1", "bye"), edge("q1", "q2", "timeout"), edge("q2", "bye"),
         edge("q2", "bye", "timeout")],
    )
    _, state = started(chatbot)
    first_wait = state["wait"]["id"]
    timed_out = flows.step(chatbot, state, event={"type": "timeout", "wait_id": first_wait}, context=context(1))
    assert texts(timed_out["actions"]) == ["Still there?"]
    state = stored(timed_out)
    duplicate = flows.step(chatbot, state, event={"type": "timeout", "wait_id": first_wait}, context=context(5))
    assert duplicate["actions"] == [] and duplicate["state"] == state


def test_the_loop_guard_hands_off_a_session_that_never_waits():
    chatbot = bot(
        [node("start", "start", trigger="any"), node("count", "action", actions=[{"type": "tag", "tag": "x"}]),
         node("again", "jump", node_id="count")],
        [edge("start", "count"), edge("count", "again")],
    )
    result, _ = started(chatbot)
    assert result["status"] == "handoff"
    assert result["actions"][-1] == {"type": "handoff", "department_id": None}
    assert len(result["visited"]) == 100
    assert "loop guard" in result["errors"][0]


@pytest.mark.parametrize("text,starts", [
    ("plans", True), ("PLANS", True), ("Plans!", True), ("  plans ", True), ("plans please", False), ("plan", False),
])
def test_keywords_match_the_whole_message_whatever_its_case(text, starts):
    result, _ = started(six_node_bot(), text=text)
    assert (result["status"] == "waiting") is starts


def test_triggers_by_accent_free_keyword_ad_payload_and_any_first_message():
    chatbot = bot(
        [node("kw", "start", trigger="keyword", keywords=["promoção"], match="contains"),
         node("ad", "start", trigger="ad", ad_id="ad-77"),
         node("button", "start", trigger="template_button", payload="TRACK_ORDER"),
         node("any", "start", trigger="any"),
         node("said_kw", "end", message="keyword"), node("said_ad", "end", message="ad"),
         node("said_button", "end", message="button"), node("said_any", "end", message="any")],
        [edge("kw", "said_kw"), edge("ad", "said_ad"), edge("button", "said_button"), edge("any", "said_any")],
    )
    assert flows.validate_bot(chatbot) == []

    def reply(event):
        return texts(flows.start(chatbot, event=event, context=context())["actions"])

    assert reply({"type": "text", "text": "Tem PROMOCAO hoje?"}) == ["keyword"]
    assert reply({"type": "text", "text": "hi", "referral": {"source_id": "ad-77"}}) == ["ad"]
    assert reply({"type": "template_button", "payload": "TRACK_ORDER"}) == ["button"]
    assert reply({"type": "text", "text": "good morning"}) == ["any"]


def question_bot(answer_type, **data):
    return bot([node("start", "start", trigger="any"),
                node("ask", "question", text="?", answer_type=answer_type, variable="answer", retry_limit=1, **data),
                node("done", "end")],
               [edge("start", "ask"), edge("ask", "done")])


@pytest.mark.parametrize("answer_type,typed,stored_value", [
    ("text", "  Ana Diaz ", "Ana Diaz"),
    ("number", "42", 42), ("number", "1,5", 1.5), ("number", "-3.25", -3.25),
    ("email", "Ana@Example.com", "Ana@example.com"),
    ("phone", "+55 11 98765-4321", "+5511987654321"),
    ("date", "2026-03-31", "2026-03-31"), ("date", "31/03/2026", "2026-03-31"),
])
def test_valid_typed_answers_are_stored_normalized(answer_type, typed, stored_value):
    chatbot = question_bot(answer_type)
    _, state = started(chatbot)
    result = flows.step(chatbot, state, event={"type": "text", "text": typed}, context=context(1))
    assert result["status"] == "ended"
    assert result["state"]["globals"]["answer"] == stored_value


@pytest.mark.parametrize("answer_type,typed,data", [
    ("number", "forty", {}), ("number", "11", {"max": 10}), ("email", "ana@", {}), ("phone", "12", {}),
    ("date", "31/02/2026", {}), ("date", "tomorrow", {}), ("text", "   ", {}),
])
def test_invalid_typed_answers_get_the_retry_message(answer_type, typed, data):
    chatbot = question_bot(answer_type, retry_message="Try again", **data)
    _, state = started(chatbot)
    result = flows.step(chatbot, state, event={"type": "text", "text": typed}, context=context(1))
    assert texts(result["actions"]) == ["Try again"] and result["status"] == "waiting"


def test_variables_contact_fields_and_system_values_in_the_organizations_timezone():
    chatbot = bot(
        [node("start", "start", trigger="any"),
         node("hours", "condition", branches=[{"id": "open", "expression": "system.hour >= 9 and system.hour < 18"}]),
         node("open", "end", message="{{contact.name}} ({{attributes.tier}}), {{vars.greeting}}: it is "
                                     "{{system.time}} on {{system.date}}, you said {{system.last_message}}."),
         node("closed", "end", message="closed")],
        [edge("start", "hours"), edge("hours", "open", "open"), edge("hours", "closed", "else")],
        variables={"greeting": "welcome"},
    )
    contact = {"name": "Ana", "attributes": {"tier": "gold"}}
    in_recife = flows.start(chatbot, event={"type": "text", "text": "oi"},
                            context={"now": NOW, "timezone": "America/Recife", "contact": contact})
    assert texts(in_recife["actions"]) == ["Ana (gold), welcome: it is 09:00 on 2026-03-02, you said oi."]
    in_tokyo = flows.start(chatbot, event={"type": "text", "text": "oi"},
                           context={"now": NOW, "timezone": "Asia/Tokyo", "contact": contact})
    assert texts(in_tokyo["actions"]) == ["closed"]


def test_a_jump_to_another_flow_starts_it_with_its_own_variables():
    faq = {"faq": {"name": "FAQ", "variables": {"topic": "shipping"},
                   "nodes": [node("faq_start", "start", trigger="keyword", keywords=["faq"]),
                             node("faq_end", "end", message="{{vars.topic}} / {{vars.plan}}")],
                   "edges": [edge("faq_start", "faq_end")]}}
    chatbot = bot([node("start", "start", trigger="any"), node("go", "jump", flow_id="faq")],
                  [edge("start", "go")], variables={"plan": "pro"}, flow_variables={"topic": "main"}, other_flows=faq)
    result, _ = started(chatbot)
    assert texts(result["actions"]) == ["shipping / pro"]
    assert result["state"]["flow_id"] == "faq"


def ai_bot():
    return bot([node("start", "start", trigger="any"),
                node("ask_ai", "ai_prompt", system="Be brief", prompt="Customer: {{system.last_message}}",
                     variable="reply"),
                node("said", "end", message="{{vars.reply}}"),
                node("sorry", "handoff", department_id=None, message="Let me get a person.")],
               [edge("start", "ask_ai"), edge("ask_ai", "said", "success"), edge("ask_ai", "sorry", "fallback")])


def test_an_ai_prompt_waits_for_its_result_and_stores_the_answer():
    chatbot = ai_bot()
    first, state = started(chatbot, text="Do you ship to Lisbon?")
    call = first["actions"][0]
    assert call == {"type": "call_ai", "call_id": 1, "system": "Be brief", "prompt": "Customer: Do you ship to Lisbon?",
                    "timeout_seconds": 20}

    meanwhile = flows.step(chatbot, state, event={"type": "text", "text": "hello?"}, context=context(1))
    stale = flows.step(chatbot, state, event={"type": "ai_result", "call_id": 99, "ok": True, "text": "x"},
                       context=context(1))
    assert meanwhile["actions"] == stale["actions"] == []

    answered = flows.step(chatbot, state, event={"type": "ai_result", "call_id": 1, "ok": True, "text": " Yes. "},
                          context=context(1))
    assert texts(answered["actions"]) == ["Yes."]
    assert answered["state"]["globals"]["reply"] == "Yes."

    failed = flows.step(chatbot, state, event={"type": "ai_result", "call_id": 1, "ok": False}, context=context(1))
    assert texts(failed["actions"]) == ["Let me get a person."] and failed["status"] == "handoff"


def test_an_api_error_status_takes_the_failure_branch():
    chatbot = bot([node("start", "start", trigger="any"),
                   node("call", "api_call", url="https://x.example/{{contact.phone}}", method="POST",
                        body={"name": "{{contact.name}}"}),
                   node("ok", "end", message="ok"), node("failed", "end", message="failed")],
                  [edge("start", "call"), edge("call", "ok", "success"), edge("call", "failed", "failure")])
    first = flows.start(chatbot, event={"type": "text", "text": "hi"},
                        context={"now": NOW, "contact": {"name": "Ana", "phone": "+5511987654321"}})
    assert first["actions"] == [{"type": "call_api", "call_id": 1, "method": "POST",
                                 "url": "https://x.example/+5511987654321", "headers": {},
                                 "body": {"name": "Ana"}, "timeout_seconds": 10}]
    result = flows.step(chatbot, stored(first), event={"type": "api_result", "ok": True, "status": 503, "json": None},
                        context=context(1))
    assert texts(result["actions"]) == ["failed"]


def test_an_interactive_message_follows_the_clicked_buttons_edge():
    chatbot = bot([node("start", "start", trigger="any"),
                   node("menu", "message", kind="buttons", text="Menu",
                        buttons=[{"id": "hours", "title": "Hours"}, {"id": "human", "title": "Talk to us"}]),
                   node("hours", "end", message="9 to 5"), node("other", "end", message="Anything else?")],
                  [edge("start", "menu"), edge("menu", "hours", "hours"), edge("menu", "other")])
    assert flows.validate_bot(chatbot) == []
    _, state = started(chatbot)
    clicked = flows.step(chatbot, state, event={"type": "button", "id": "hours"}, context=context(1))
    typed = flows.step(chatbot, state, event={"type": "text", "text": "hours"}, context=context(1))
    assert texts(clicked["actions"]) == ["9 to 5"] and texts(typed["actions"]) == ["Anything else?"]


def test_an_action_node_emits_its_crm_actions_and_closing_ends_the_session():
    chatbot = bot(
        [node("start", "start", trigger="any"),
         node("crm", "action", actions=[
             {"type": "set_variable", "name": "greeting", "value": "hi {{contact.name}}"},
             {"type": "set_attribute", "name": "source", "value": "{{system.last_message}}"},
             {"type": "set_lifecycle_stage", "stage": "customer"}, {"type": "untag", "tag": "cold"},
             {"type": "opt_out"}, {"type": "assign_department", "department_id": "d-1"},
             {"type": "close_conversation"}]),
         node("never", "end", message="not reached")],
        [edge("start", "crm"), edge("crm", "never")],
    )
    result = flows.start(chatbot, event={"type": "text", "text": "instagram"},
                         context={"now": NOW, "contact": {"name": "Ana", "tags": ["cold", "vip"]}})
    assert result["actions"] == [
        {"type": "set_attribute", "name": "source", "value": "instagram"},
        {"type": "set_lifecycle_stage", "stage": "customer"}, {"type": "untag", "tag": "cold"},
        {"type": "opt_out", "category": "marketing"}, {"type": "assign_department", "department_id": "d-1"},
        {"type": "close_conversation"}]
    assert result["status"] == "ended"
    assert result["state"]["globals"] == {"greeting": "hi Ana"}
    assert result["contact"]["tags"] == ["vip"] and result["contact"]["attributes"] == {"source": "instagram"}
    assert result["contact"]["lifecycle_stage"] == "customer"


def test_messages_come_out_as_the_send_api_takes_them():
    rows = {"button": "Slots", "sections": [{"title": "Mon", "rows": [{"id": "mon_9", "title": "09:00"}]}]}
    chatbot = bot(
        [node("start", "start", trigger="any"),
         node("pic", "message", kind="image", link="https://cdn.example/{{vars.sku}}.jpg", caption="{{vars.sku}}"),
         node("tpl", "message", kind="template", template_id="t-1", variables={"body": ["{{contact.name}}"]}),
         node("slot", "question", text="When?", answer_type="choice", variable="slot", list=rows),
         node("done", "end")],
        [edge("start", "pic"), edge("pic", "tpl"), edge("tpl", "slot"), edge("slot", "done")],
        variables={"sku": "K-1"},
    )
    result = flows.start(chatbot, event={"type": "text", "text": "hi"}, context=context())
    assert [action["message"] for action in result["actions"]] == [
        {"type": "image", "image": {"link": "https://cdn.example/K-1.jpg", "caption": "K-1"}},
        {"type": "template", "template_id": "t-1", "variables": {"body": ["Ana"]}},
        {"type": "interactive", "interactive": {"type": "list", "body": {"text": "When?"},
                                                "action": {"button": "Slots", "sections": rows["sections"]}}},
    ]
    picked = flows.step(chatbot, stored(result), event={"type": "list", "id": "mon_9"}, context=context(1))
    assert picked["state"]["globals"]["slot"] == "mon_9" and picked["status"] == "ended"
