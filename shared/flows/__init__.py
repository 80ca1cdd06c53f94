"""The bot flow interpreter: pure functions, no I/O (issue 11).

    from shared import flows
    flows.NODE_TYPES                      the node type names
    flows.validate_node(node)             [{"node_id", "field", "message"}], [] when valid
    flows.validate_bot(bot)               [{"flow_id", "node_id", "field", "message"}], [] when publishable
    flows.simulate(bot, messages, *, contact=None, now=None, call_api=None, call_ai=None, timezone=None, number=None)
        → {"transcript", "variables", "status", "actions", "contact", "errors", "state", "problems"};
        status "invalid" with validate_bot's problems for a chatbot that cannot run (nothing is run);
        raises flows.ScriptError (a ValueError: answer 422) for a script it cannot play
    flows.start(bot, event=, context=)    a new session, or status "not_started" when no trigger matches
    flows.step(bot, state, event=, context=)
    flows.parse_expression(text)          raises flows.ExpressionError outside the condition language

THE CHATBOT (what a published version freezes; JSON):
    {"chatbot_id": "<uuid>", "main_flow_id": "<uuid>",
     "flows": {"<flow uuid>": {"name": "...", "nodes": [...], "edges": [...], "variables": {"<name>": <default>}}},
     "variables": {"<chatbot-wide name>": <default>}}
A node is React Flow's {"id", "type", "position": {"x", "y"}, "data": {...}}; an edge is
{"id", "source", "target", "sourceHandle"}. A sourceHandle of null, "", "next" or "default" is the
node's default way out.

NODE DATA, AND THE HANDLES EDGES LEAVE BY
  start      {"trigger": "keyword", "keywords": ["hi", "olá"], "match": "exact" | "contains"}
             | {"trigger": "any"}                       (any first message no other trigger takes)
             | {"trigger": "ad", "ad_id": "<click-to-WhatsApp ad id>"}  (event "ad_id" or referral.source_id)
             | {"trigger": "template_button", "payload": "<quick-reply payload>"}
             Keywords ignore case, accents and punctuation. Handles: null (required).
  message    {"kind": "text", "text": "Hi {{contact.name}}", "preview_url": false}
             | {"kind": "image"|"video"|"audio"|"document"|"sticker", "link" or "media_id", "caption"?, "filename"?}
             | {"kind": "template", "template_id": "<uuid>", "variables": {...as the send API takes them}}
             | {"kind": "buttons", "text", "buttons": [{"id", "title"}] (1-3), "header"?, "footer"?}
             | {"kind": "list", "text", "list": {"button": "<label>", "sections": [{"title", "rows": [{"id", "title",
                 "description"?}]}]}, "header"?, "footer"?}
             Handles: null. A buttons/list message waits for the click: handles are also its button/row ids;
             a click without an edge of its own, or a typed message, takes null; without a null edge
             every id needs an edge (and anything else is ignored).
  question   {"text": "<the question>", "answer_type": "text"|"number"|"email"|"phone"|"date"|"choice",
              "variable": "<name>", "retry_message"?: "<text>" (default: the question again),
              "retry_limit"?: 0-10 (default 2), "timeout_seconds"?: 10-604800, "min"?, "max"? (number),
              choice: "buttons": [{"id", "title"}] or "list": {...as message}, "header"?, "footer"?}
             Stored: text as typed (trimmed); number as int/float ("1,5" reads 1.5); email normalized;
             phone in E.164 (context "default_country" for local numbers); date as "YYYY-MM-DD" (from ISO or
             dd/mm/yyyy); choice as the clicked id (never matched by title).
             Handles: null (answered; for a choice, the default for ids without their own edge), each
             button/row id, "retry_limit" ("invalid" is accepted for it: past retry_limit invalid answers;
             without it the session is handed to the queue), "timeout" (required with timeout_seconds).
  condition  {"branches": [{"id": "adult", "expression": "vars.age >= 18 and not ('vip' in contact.tags)"}]}
             The first branch that holds wins. Handles: each branch id, "else" (all required).
             Language (shared/flows/expressions.py): == != < <= > >= contains in "not in" and or not ( )
             'text' "text" numbers true false null [lists]; paths vars.x, contact.name|phone|email|lead_score|
             lifecycle_stage|tags|attributes, attributes.x, system.now|date|time|hour|weekday|number|last_message.
  action     {"actions": [{"type": "set_variable", "name", "value"} | {"type": "tag"|"untag", "tag"}
              | {"type": "set_lifecycle_stage", "stage"} | {"type": "change_lead_score", "delta": <int>}
              | {"type": "opt_in"|"opt_out", "category"?: "marketing"|"utility"} | {"type": "set_attribute", "name",
              "value"} | {"type": "assign_department", "department_id"} | {"type": "close_conversation"}]}
             Text values take {{variables}}. Handles: null. close_conversation ends the session.
  api_call   {"method": "GET"|"POST"|"PUT"|"PATCH"|"DELETE", "url": "https://...{{vars.id}}", "headers"?: {..},
              "body"?: <JSON, texts rendered>, "timeout_seconds"?: 1-60 (default 10),
              "mappings"?: [{"path": "$.order.items[0].name", "variable": "item"}], "status_variable"?: "<name>"}
             Handles: "success" (ok and status < 400), "failure" (required: errors, timeouts, 4xx/5xx).
  ai_prompt  {"prompt": "<text with {{variables}}>", "system"?: "<text>", "variable": "<name>",
              "timeout_seconds"?: 1-60 (default 20)}. Handles: "success", "fallback" (required).
  jump       {"node_id": "<node of this flow>"} | {"flow_id": "<flow>", "node_id"?: "<node there>" (default: its
             first start)}. No edges out. Entering another flow resets that flow's own variables.
  end        {"message"?: "<text>", "close_conversation"?: bool}. No edges out.
  handoff    {"department_id": "<uuid>" | null (the queue), "message"?: "<text>"}. No edges out.
A node with no edge for the way it leaves ends the session there (status "ended").

EVENTS: {"type": "text", "text"} | {"type": "button"|"list", "id", "title"?} | {"type": "template_button",
"payload"} | {"type": "media", ...} (starts only: "ad_id" or "referral": {"source_id"}) | {"type": "timeout",
"wait_id"?} | {"type": "api_result", "call_id"?, "ok", "status", "json"} | {"type": "ai_result", "call_id"?, "ok",
"text"}. An event the session is not waiting for changes nothing; a "wait_id"/"call_id" that is not the
state's current wait["id"] changes nothing (a late timeout, a stale result).

CONTEXT: {"now": aware datetime (UTC when omitted), "timezone": "America/Sao_Paulo" (the organization's),
"number": "+1555...", "default_country": "BR", "contact": {"name", "phone", "email", "lead_score",
"lifecycle_stage", "tags": [...], "attributes": {...}}}.

RESULT of start/step: {"actions": [...], "state": <JSON-able>, "status": "waiting"|"ended"|"handoff"|"not_started",
"visited": [{"flow_id", "node_id"}], "errors": [text], "contact": <the contact after the actions, or None>}.
Actions, performed by the bots pool in order:
    {"type": "send_message", "message": <send API spec: {"type": "text", "text": {"body"}} | media |
        {"type": "interactive", "interactive": {...}} | {"type": "template", "template_id", "variables"}>}
    {"type": "tag"|"untag", "tag"} {"type": "set_lifecycle_stage", "stage"} {"type": "change_lead_score", "delta"}
    {"type": "opt_in"|"opt_out", "category"?} {"type": "set_attribute", "name", "value"}
    {"type": "assign_department", "department_id"} {"type": "close_conversation"}
    {"type": "call_api", "call_id", "method", "url", "headers", "body", "timeout_seconds"}  → next event api_result
    {"type": "call_ai", "call_id", "system", "prompt", "timeout_seconds"}                 → next event ai_result
    {"type": "handoff", "department_id"}  (null: the queue; also what the loop guard emits)
STATE: {"v", "chatbot_id", "flow_id", "node_id", "status", "globals", "locals", "last_message", "seq",
"auto_visits", "wait": null | {"kind": "answer"|"api"|"ai", "id", "retries", "deadline": ISO UTC or null}}.
A question's timeout is due when now >= wait["deadline"]; beat sends {"type": "timeout"} then.
"""

from shared.flows.expressions import ExpressionError
from shared.flows.expressions import parse as parse_expression
from shared.flows.graph import validate_bot
from shared.flows.nodes import NODE_TYPES, validate_node
from shared.flows.runtime import start, step
from shared.flows.simulate import ScriptError, simulate

__all__ = ["NODE_TYPES", "ExpressionError", "ScriptError", "parse_expression", "simulate", "start", "step",
           "validate_bot", "validate_node"]
