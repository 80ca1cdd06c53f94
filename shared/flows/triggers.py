"""Which start node a customer's first message triggers.

Keywords match without regard to case, accents or surrounding punctuation ("Olá!" triggers "ola"):
the whole message (`"match": "exact"`, the default) or any of its words in a row (`"match": "contains"`).
A click-to-WhatsApp ad id, a template button payload and a keyword win over an `any` trigger.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from shared.flows.index import start_nodes

_WORDS = re.compile(r"\w+")


def normalize(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " ".join(_WORDS.findall(plain))


def trigger_keys(data: dict[str, Any]) -> list[tuple[str, str]]:
    """What a start node answers to, as (trigger, key) pairs; two starts sharing a pair are ambiguous."""
    trigger = data.get("trigger")
    if trigger == "keyword":
        return [("keyword", normalize(k)) for k in data.get("keywords") or [] if isinstance(k, str)]
    if trigger == "ad":
        return [("ad", str(data.get("ad_id")))]
    if trigger == "template_button":
        return [("template_button", str(data.get("payload")))]
    return [("any", "")] if trigger == "any" else []


def _ad_id(event: dict[str, Any]) -> str | None:
    referral = event.get("referral") if isinstance(event.get("referral"), dict) else {}
    return event.get("ad_id") or referral.get("source_id")


def _payload(event: dict[str, Any]) -> str | None:
    if event.get("type") == "template_button":
        return event.get("payload")
    return event.get("payload") or (event.get("id") if event.get("type") == "button" else None)


def _keyword_matches(data: dict[str, Any], text: str) -> bool:
    said = normalize(text)
    keywords = [normalize(k) for k in data.get("keywords") or [] if isinstance(k, str)]
    if data.get("match") == "contains":
        return any(k and re.search(rf"(^| ){re.escape(k)}( |$)", said) for k in keywords)
    return said in keywords


def _matches(data: dict[str, Any], event: dict[str, Any]) -> bool:
    trigger = data.get("trigger")
    if trigger == "ad":
        return _ad_id(event) is not None and _ad_id(event) == data.get("ad_id")
    if trigger == "template_button":
        return _payload(event) is not None and _payload(event) == data.get("payload")
    if trigger == "keyword":
        return isinstance(event.get("text"), str) and _keyword_matches(data, event["text"])
    return False


def find_start(bot: dict[str, Any], event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(flow id, start node) the event triggers, the main flow's starts first; None when nothing does."""
    flow_ids = [bot["main_flow_id"], *[fid for fid in bot["flows"] if fid != bot["main_flow_id"]]]
    starts = [(fid, node) for fid in flow_ids if fid in bot["flows"] for node in start_nodes(bot["flows"][fid])]
    for flow_id, node in starts:
        if _matches(node.get("data") or {}, event):
            return flow_id, node
    for flow_id, node in starts:
        if (node.get("data") or {}).get("trigger") == "any":
            return flow_id, node
    return None
