"""A stand-in for an OpenAI-compatible chat-completions endpoint, the one a chatbot's `ai_prompt` node calls, so
tests and the demo need no outside service.

`POST /ai/v1/chat/completions` answers like the real endpoint (Bearer key required, `model` and `messages`
checked, OpenAI's error shape). What it answers is set through `PUT /_sandbox/ai`:
  answers: {"<text in the prompt>": "<answer>"}  the first whose key the last user message contains (any case)
  default_answer: the answer otherwise (default: the last user message, quoted back)
  fail: null | "error" (a 500, as OpenAI's "server_error") | "timeout" (no answer for hang_seconds)
  latency_ms, hang_seconds
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from flask import Blueprint, jsonify, request

from sandbox.runtime import current
from sandbox.state import DEFAULT_AI, ConfigError

blueprint = Blueprint("ai", __name__)

FAILURES = (None, "error", "timeout")


def checked_ai(current_knobs: dict[str, Any], changes: Any) -> dict[str, Any]:
    if not isinstance(changes, dict) or set(changes) - set(DEFAULT_AI):
        raise ConfigError(f"ai takes only {', '.join(DEFAULT_AI)}")
    updated = {**current_knobs, **changes}
    if not isinstance(updated["answers"], dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in updated["answers"].items()):
        raise ConfigError("answers maps prompt texts to answer texts")
    if updated["default_answer"] is not None and not isinstance(updated["default_answer"], str):
        raise ConfigError("default_answer is a text or null")
    if updated["fail"] not in FAILURES:
        raise ConfigError("fail is null, 'error' or 'timeout'")
    for name in ("latency_ms", "hang_seconds"):
        if not isinstance(updated[name], (int, float)) or isinstance(updated[name], bool) or updated[name] < 0:
            raise ConfigError(f"{name} is a number >= 0")
    return updated


def _error(status: int, kind: str, message: str, code: str | None = None):
    return jsonify({"error": {"message": message, "type": kind, "param": None, "code": code}}), status


def _last_user_text(messages: Any) -> str | None:
    """The last user message's text; None when `messages` is not a list of {role, content: text}."""
    if not isinstance(messages, list) or not messages:
        return None
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
               for m in messages):
        return None
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else None


def _answer(knobs: dict[str, Any], prompt: str) -> str:
    for text, answer in knobs["answers"].items():
        if text.lower() in prompt.lower():
            return answer
    return knobs["default_answer"] if knobs["default_answer"] is not None else f"You said: {prompt}"


@blueprint.post("/ai/v1/chat/completions")
def chat_completions():
    state = current().state
    with state.lock:
        knobs = dict(state.ai)
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not key.strip():
        return _error(401, "invalid_request_error", "You didn't provide an API key.", "invalid_api_key")
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
        return _error(400, "invalid_request_error", "you must provide a model parameter")
    prompt = _last_user_text(body.get("messages"))
    if prompt is None:
        return _error(400, "invalid_request_error", "messages must be a list of {role, content} with a user message")
    time.sleep(knobs["latency_ms"] / 1000)
    if knobs["fail"] == "error":
        return _error(500, "server_error", "The server had an error while processing your request.")
    if knobs["fail"] == "timeout":
        time.sleep(knobs["hang_seconds"])
        return _error(504, "server_error", "The request timed out.")
    answer = _answer(knobs, prompt)
    return jsonify({
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(answer.split()),
                  "total_tokens": len(prompt.split()) + len(answer.split())},
    })


@blueprint.get("/_sandbox/ai")
def get_ai():
    return jsonify(current().state.ai)


@blueprint.put("/_sandbox/ai")
def set_ai():
    state = current().state
    try:
        with state.lock:
            state.ai = checked_ai(DEFAULT_AI, request.get_json(silent=True) or {})
            return jsonify(state.ai)
    except ConfigError as exc:
        return jsonify({"error": str(exc)}), 400
