"""The chat-completions stand-in (sandbox/ai.py): OpenAI's request and answer shapes, its answers set by the
control API, and its failures on demand."""

from __future__ import annotations

import time

URL = "/ai/v1/chat/completions"
KEY = {"Authorization": "Bearer sk-sandbox"}


def ask(graph, text="What are your opening hours?", **extra):
    return graph.post(URL, json={"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "You are a shop assistant."}, {"role": "user", "content": text}], **extra},
        headers=KEY)


def test_it_answers_like_openai_with_the_answer_set_for_the_prompt(graph):
    graph.put("/_sandbox/ai", json={"answers": {"opening hours": "We open at 9."}})
    answer = ask(graph)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["object"] == "chat.completion" and body["model"] == "gpt-4o-mini"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": "We open at 9."}
    assert body["choices"][0]["finish_reason"] == "stop" and body["usage"]["total_tokens"] > 0
    assert ask(graph, "Hello there").get_json()["choices"][0]["message"]["content"] == "You said: Hello there"


def test_it_refuses_what_openai_refuses(graph):
    assert graph.post(URL, json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}).status_code == 401
    no_model = graph.post(URL, json={"messages": [{"role": "user", "content": "hi"}]}, headers=KEY)
    assert no_model.status_code == 400 and no_model.get_json()["error"]["type"] == "invalid_request_error"
    assert graph.post(URL, json={"model": "m", "messages": "hi"}, headers=KEY).status_code == 400
    assert graph.put("/_sandbox/ai", json={"fail": "sometimes"}).status_code == 400


def test_it_fails_and_hangs_on_demand(graph):
    graph.put("/_sandbox/ai", json={"fail": "error"})
    failed = ask(graph)
    assert failed.status_code == 500 and failed.get_json()["error"]["type"] == "server_error"
    graph.put("/_sandbox/ai", json={"fail": "timeout", "hang_seconds": 0.3})
    started = time.monotonic()
    assert ask(graph).status_code == 504
    assert time.monotonic() - started >= 0.3
    graph.post("/_sandbox/reset")
    assert graph.get("/_sandbox/ai").get_json()["fail"] is None
