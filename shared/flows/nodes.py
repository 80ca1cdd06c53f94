"""Each node type's own rules, checked when a node is saved (`validate_node`).

The data each type holds is documented in shared/flows/__init__.py. Problems are
`{"node_id", "field", "message"}`; `field` names the key inside `data` (dotted for nested ones).
"""

from __future__ import annotations

import re
from typing import Any, Callable

from shared.flows import jsonpath
from shared.flows.answers import ANSWER_TYPES, choice_ids
from shared.flows.expressions import ExpressionError, parse
from shared.flows.messages import MESSAGE_KINDS, message_problems, question_kind
from shared.flows.templating import placeholder_problems

NODE_TYPES = ("start", "message", "question", "condition", "action", "api_call", "ai_prompt", "jump", "end",
              "handoff")
TRIGGERS = ("keyword", "any", "ad", "template_button")
OPERATIONS = ("set_variable", "tag", "untag", "set_lifecycle_stage", "change_lead_score", "opt_in", "opt_out",
              "set_attribute", "assign_department", "close_conversation")
CONSENT_CATEGORIES = ("marketing", "utility")
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
RESERVED_HANDLES = ("timeout", "retry_limit", "invalid", "else", "success", "failure", "fallback", "default")
MAX_RETRY_LIMIT = 10
MAX_QUESTION_TIMEOUT = 7 * 24 * 3600
MAX_CALL_TIMEOUT = 60
VARIABLE_NAME = re.compile(r"[A-Za-z_]\w{0,63}")

Problems = list[tuple[str, str]]


def _text(data: dict, field: str, *, required: bool = True) -> Problems:
    value = data.get(field)
    if value is None and not required:
        return []
    if not isinstance(value, str) or not value.strip():
        return [(field, f"{field} must be a non-empty text")]
    return [(field, problem) for problem in placeholder_problems(value)]


def _variable(data: dict, field: str = "variable", *, required: bool = True) -> Problems:
    value = data.get(field)
    if value is None and not required:
        return []
    if not isinstance(value, str) or not VARIABLE_NAME.fullmatch(value):
        return [(field, f"{field} must be a variable name (letters, digits and _, not starting with a digit)")]
    return []


def _seconds(data: dict, field: str, low: int, high: int, *, required: bool) -> Problems:
    value = data.get(field)
    if value is None and not required:
        return []
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        return [(field, f"{field} must be a number of seconds from {low} to {high}")]
    return []


def _start(data: dict) -> Problems:
    trigger = data.get("trigger")
    if trigger not in TRIGGERS:
        return [("trigger", f"trigger must be one of {', '.join(TRIGGERS)}")]
    if trigger == "keyword":
        keywords = data.get("keywords")
        if not isinstance(keywords, list) or not keywords or not all(isinstance(k, str) and k.strip()
                                                                     for k in keywords):
            return [("keywords", "a keyword trigger needs a list of non-empty keywords")]
        if data.get("match", "exact") not in ("exact", "contains"):
            return [("match", "match must be exact or contains")]
    if trigger == "ad":
        return _text(data, "ad_id")
    if trigger == "template_button":
        return _text(data, "payload")
    return []


def _choices(data: dict) -> Problems:
    ids = choice_ids(data)
    problems = []
    if len(set(ids)) != len(ids):
        problems.append(("buttons" if data.get("buttons") else "list", "button and row ids must be unique"))
    problems += [("buttons", f"{choice!r} is a reserved handle name; choose another id")
                 for choice in ids if choice in RESERVED_HANDLES]
    return problems


def _message(data: dict) -> Problems:
    kind = data.get("kind")
    if kind not in MESSAGE_KINDS:
        return [("kind", f"kind must be one of {', '.join(MESSAGE_KINDS)}")]
    return message_problems(data, kind) + (_choices(data) if kind in ("buttons", "list") else [])


def _question(data: dict) -> Problems:
    answer_type = data.get("answer_type", "text")
    if answer_type not in ANSWER_TYPES:
        return [("answer_type", f"answer_type must be one of {', '.join(ANSWER_TYPES)}")]
    problems = _text(data, "text") + _variable(data) + _text(data, "retry_message", required=False)
    problems += _seconds(data, "timeout_seconds", 10, MAX_QUESTION_TIMEOUT, required=False)
    limit = data.get("retry_limit", 2)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_RETRY_LIMIT:
        problems.append(("retry_limit", f"retry_limit must be a whole number from 0 to {MAX_RETRY_LIMIT}"))
    if answer_type == "choice":
        if bool(data.get("buttons")) == bool(data.get("list")):
            return problems + [("buttons", "a choice question needs either buttons or a list (not both)")]
        problems += message_problems(data, question_kind(data)) + _choices(data)
    for bound in ("min", "max"):
        value = data.get(bound)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            problems.append((bound, f"{bound} must be a number"))
    return problems


def _condition(data: dict) -> Problems:
    branches = data.get("branches")
    if not isinstance(branches, list) or not branches:
        return [("branches", "a condition needs at least one branch ({id, expression})")]
    problems, seen = [], set()
    for index, branch in enumerate(branches):
        field = f"branches[{index}]"
        if not isinstance(branch, dict) or not isinstance(branch.get("id"), str) or not branch["id"]:
            problems.append((f"{field}.id", "every branch needs an id"))
            continue
        if branch["id"] in seen or branch["id"] == "else":
            problems.append((f"{field}.id", f"branch id {branch['id']!r} is used twice (or is the reserved 'else')"))
        seen.add(branch["id"])
        try:
            parse(branch.get("expression"))
        except ExpressionError as exc:
            problems.append((f"{field}.expression", str(exc)))
    return problems


def _operation(operation: Any, field: str) -> Problems:
    if not isinstance(operation, dict) or operation.get("type") not in OPERATIONS:
        return [(f"{field}.type", f"type must be one of {', '.join(OPERATIONS)}")]
    kind = operation["type"]
    needs = {"set_variable": ("name",), "tag": ("tag",), "untag": ("tag",), "set_lifecycle_stage": ("stage",),
             "set_attribute": ("name",), "assign_department": ("department_id",)}.get(kind, ())
    problems = [(f"{field}.{key}", f"{kind} needs {key}") for key in needs
                if not isinstance(operation.get(key), str) or not operation[key].strip()]
    if kind == "set_variable" and not problems:
        problems += [(f"{field}.{f}", m) for f, m in _variable(operation, "name")]
    if kind in ("set_variable", "set_attribute") and "value" not in operation:
        problems.append((f"{field}.value", f"{kind} needs a value"))
    delta = operation.get("delta")
    if kind == "change_lead_score" and (isinstance(delta, bool) or not isinstance(delta, int)):
        problems.append((f"{field}.delta", "delta must be a whole number (negative to lower the score)"))
    if kind in ("opt_in", "opt_out") and operation.get("category", "marketing") not in CONSENT_CATEGORIES:
        problems.append((f"{field}.category", f"category must be one of {', '.join(CONSENT_CATEGORIES)}"))
    return problems


def _action(data: dict) -> Problems:
    operations = data.get("actions")
    if not isinstance(operations, list) or not operations:
        return [("actions", "an action node needs a list of actions")]
    return [problem for index, operation in enumerate(operations)
            for problem in _operation(operation, f"actions[{index}]")]


def _api_call(data: dict) -> Problems:
    problems = _seconds(data, "timeout_seconds", 1, MAX_CALL_TIMEOUT, required=False)
    if data.get("method", "GET") not in HTTP_METHODS:
        problems.append(("method", f"method must be one of {', '.join(HTTP_METHODS)}"))
    url = data.get("url")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        problems.append(("url", "url must start with http:// or https://"))
    else:
        problems += [("url", problem) for problem in placeholder_problems(url)]
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        problems.append(("headers", "headers must be an object of texts"))
    mappings = data.get("mappings") or []
    if not isinstance(mappings, list):
        return problems + [("mappings", "mappings must be a list of {path, variable}")]
    for index, mapping in enumerate(mappings):
        mapping = mapping if isinstance(mapping, dict) else {}
        problems += [(f"mappings[{index}].{f}", m) for f, m in _variable(mapping)]
        try:
            jsonpath.steps(mapping.get("path"))
        except ValueError as exc:
            problems.append((f"mappings[{index}].path", str(exc)))
    return problems + _variable(data, "status_variable", required=False)


def _ai_prompt(data: dict) -> Problems:
    return (_text(data, "prompt") + _text(data, "system", required=False) + _variable(data)
            + _seconds(data, "timeout_seconds", 1, MAX_CALL_TIMEOUT, required=False))


def _jump(data: dict) -> Problems:
    if not any(isinstance(data.get(key), str) and data[key] for key in ("node_id", "flow_id")):
        return [("node_id", "a jump needs a node_id (this flow) or a flow_id (another flow's start)")]
    return []


def _end(data: dict) -> Problems:
    return _text(data, "message", required=False)


def _handoff(data: dict) -> Problems:
    department = data.get("department_id")
    problems = _text(data, "message", required=False)
    if department is not None and (not isinstance(department, str) or not department):
        problems.append(("department_id", "department_id must be a department's id, or null for the queue"))
    return problems


RULES: dict[str, Callable[[dict], Problems]] = {
    "start": _start, "message": _message, "question": _question, "condition": _condition, "action": _action,
    "api_call": _api_call, "ai_prompt": _ai_prompt, "jump": _jump, "end": _end, "handoff": _handoff,
}


def _shape(node: Any) -> Problems:
    if not isinstance(node, dict):
        return [("node", "a node must be an object")]
    problems = []
    if not isinstance(node.get("id"), str) or not node["id"]:
        problems.append(("id", "a node needs a non-empty id"))
    if node.get("type") not in NODE_TYPES:
        problems.append(("type", f"type must be one of {', '.join(NODE_TYPES)}"))
    if not isinstance(node.get("data", {}), dict):
        problems.append(("data", "data must be an object"))
    position = node.get("position", {"x": 0, "y": 0})
    if not isinstance(position, dict) or not all(isinstance(position.get(axis), (int, float))
                                                 and not isinstance(position.get(axis), bool) for axis in "xy"):
        problems.append(("position", "position must be {x, y} numbers"))
    return problems


def validate_node(node: Any) -> list[dict[str, Any]]:
    """Every problem of one node as saved; [] when it is valid."""
    problems = _shape(node)
    node_id = node.get("id") if isinstance(node, dict) else None
    if isinstance(node, dict) and node.get("type") in NODE_TYPES and isinstance(node.get("data", {}), dict):
        problems += RULES[node["type"]](node.get("data") or {})
    return [{"node_id": node_id, "field": field, "message": message} for field, message in problems]
