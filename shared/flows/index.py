"""Lookups over a flow's React Flow graph: nodes by id, and where each (node, handle) leads."""

from __future__ import annotations

from typing import Any

DEFAULT_HANDLE_NAMES = (None, "", "next", "default")


def handle(edge: dict[str, Any]) -> str | None:
    """The edge's sourceHandle, with the default-path spellings (null, "", "next", "default") as None."""
    name = edge.get("sourceHandle")
    return None if name in DEFAULT_HANDLE_NAMES else name


def nodes_by_id(flow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {node["id"]: node for node in flow.get("nodes") or [] if isinstance(node, dict)
            and isinstance(node.get("id"), str)}


def well_formed(edge: object) -> bool:
    return isinstance(edge, dict) and isinstance(edge.get("source"), str) and isinstance(edge.get("target"), str) \
        and isinstance(edge.get("sourceHandle"), (str, type(None)))


def edges_by_handle(flow: dict[str, Any]) -> dict[tuple[str, str | None], str]:
    """(source node id, handle) → target node id; the first edge wins where the graph has two."""
    found: dict[tuple[str, str | None], str] = {}
    for edge in flow.get("edges") or []:
        if well_formed(edge):
            found.setdefault((edge.get("source"), handle(edge)), edge.get("target"))
    return found


def start_nodes(flow: dict[str, Any]) -> list[dict[str, Any]]:
    return [node for node in nodes_by_id(flow).values() if node.get("type") == "start"]


def data_of(node: dict[str, Any]) -> dict[str, Any]:
    """The node's data; {} when it is not an object (validate_node reports that)."""
    data = node.get("data")
    return data if isinstance(data, dict) else {}


def waits_for_customer(node: dict[str, Any]) -> bool:
    """Questions and interactive messages stop the step until the customer answers."""
    data = data_of(node)
    return node.get("type") == "question" or (node.get("type") == "message"
                                                and data.get("kind") in ("buttons", "list"))
