"""Whole-chatbot validation before publishing (`validate_bot`): every problem at once.

One start per trigger, no dangling or ambiguous edges, every node reachable, every button and list
row handled or defaulted, every branch and failure path wired, no loop that never waits for the
customer, plus every node's own problems (shared/flows/nodes.py).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator

from shared.flows.answers import choice_ids
from shared.flows.index import (data_of, edges_by_handle, handle, nodes_by_id, start_nodes, waits_for_customer,
                               well_formed)
from shared.flows.nodes import validate_node
from shared.flows.triggers import trigger_keys

NO_EDGES_OUT = ("jump", "end", "handoff")


def _problem(flow_id: Any, node_id: Any, field: Any, message: str) -> dict[str, Any]:
    return {"flow_id": flow_id, "node_id": node_id, "field": field, "message": message}


def allowed_handles(node: dict[str, Any]) -> set[str | None]:
    data, kind = data_of(node), node.get("type")
    if kind in NO_EDGES_OUT:
        return set()
    if kind == "condition":
        return {branch["id"] for branch in data.get("branches") or []
                if isinstance(branch, dict) and isinstance(branch.get("id"), str)} | {"else"}
    if kind == "question":
        return {None, "retry_limit", "invalid", "timeout", *choice_ids(data)}
    if kind == "api_call":
        return {"success", "failure"}
    if kind == "ai_prompt":
        return {"success", "fallback"}
    return {None, *choice_ids(data)} if waits_for_customer(node) else {None}


def required_handles(node: dict[str, Any], present: set[str | None]) -> Iterator[tuple[str | None, str]]:
    """(handle, why) for each path the node needs wired; present is the node's handles that have edges."""
    data, kind = data_of(node), node.get("type")
    if kind == "start":
        yield None, "a start node needs an edge to the first step"
    if kind == "condition":
        for branch in data.get("branches") or []:
            if isinstance(branch, dict):
                yield branch.get("id"), f"branch {branch.get('id')!r} has no edge"
        yield "else", "the condition needs an 'else' edge for when no branch holds"
    if kind == "question" and data.get("timeout_seconds") is not None:
        yield "timeout", "the question has a timeout but no 'timeout' edge"
    if kind == "api_call":
        yield "failure", "the API call needs a 'failure' edge (timeouts and errors go there)"
    if kind == "ai_prompt":
        yield "fallback", "the AI prompt needs a 'fallback' edge (for when the AI endpoint fails)"
    if (kind == "question" and data.get("answer_type") == "choice") or (kind == "message" and waits_for_customer(node)):
        if None not in present:
            for choice in choice_ids(data):
                yield choice, f"button or row {choice!r} has no edge and there is no default edge"


def _edge_problems(flow_id: str, flow: dict[str, Any], nodes: dict[str, dict]) -> list[dict[str, Any]]:
    problems, seen = [], set()
    for position, edge in enumerate(flow.get("edges") or []):
        if not well_formed(edge):
            problems.append(_problem(flow_id, None, f"edges[{position}]", "an edge is {id, source, target, "
                                     "sourceHandle}: node ids and a handle name as texts"))
            continue
        source, target, name = edge.get("source"), edge.get("target"), handle(edge)
        label = f"edge {edge.get('id') or position}"
        if source not in nodes or target not in nodes:
            missing = source if source not in nodes else target
            problems.append(_problem(flow_id, source if source in nodes else None, f"edges[{position}]",
                                     f"{label} is dangling: node {missing!r} does not exist in this flow"))
            continue
        allowed = allowed_handles(nodes[source])
        if name not in allowed:
            wanted = sorted(str(h) for h in allowed) or ["none: this node ends the path"]
            problems.append(_problem(flow_id, source, f"edges[{position}].sourceHandle",
                                     f"{label} leaves by handle {name!r}; this node's handles are {', '.join(wanted)}"))
        elif (source, name) in seen:
            problems.append(_problem(flow_id, source, f"edges[{position}].sourceHandle",
                                     f"{label}: handle {name!r} of node {source!r} already has an edge"))
        seen.add((source, name))
    return problems


def _jump_target(bot: dict[str, Any], flow_id: str, data: dict[str, Any]) -> tuple[str, str | None]:
    target_flow = data.get("flow_id") or flow_id
    flow = bot["flows"].get(target_flow) if isinstance(target_flow, str) else None
    if not isinstance(flow, dict):
        return target_flow, None
    if isinstance(data.get("node_id"), str) and data["node_id"]:
        return target_flow, data["node_id"] if data["node_id"] in nodes_by_id(flow) else None
    starts = start_nodes(flow)
    return target_flow, starts[0]["id"] if starts else None


def _links(bot: dict[str, Any]) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Every (flow, node) → the (flow, node)s it can continue to, by edge or by jump."""
    links: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for flow_id, flow in bot["flows"].items():
        nodes = nodes_by_id(flow)
        for (source, _), target in edges_by_handle(flow).items():
            if source in nodes and target in nodes:
                links[(flow_id, source)].append((flow_id, target))
        for node in nodes.values():
            if node.get("type") == "jump":
                target_flow, target = _jump_target(bot, flow_id, data_of(node))
                if target is not None:
                    links[(flow_id, node["id"])].append((target_flow, target))
    return links


def _reachable(bot: dict[str, Any], links: dict) -> set[tuple[str, str]]:
    pending = [(flow_id, node["id"]) for flow_id, flow in bot["flows"].items() for node in start_nodes(flow)]
    seen = set(pending)
    while pending:
        for following in links.get(pending.pop(), []):
            if following not in seen:
                seen.add(following)
                pending.append(following)
    return seen


def _loops(bot: dict[str, Any], links: dict) -> list[list[tuple[str, str]]]:
    """Cycles made only of nodes that do not wait for the customer (each reported once)."""
    waiting = {(fid, node["id"]) for fid, flow in bot["flows"].items()
               for node in nodes_by_id(flow).values() if waits_for_customer(node)}
    state: dict[tuple[str, str], str] = {}
    cycles = []

    def visit(key: tuple[str, str], path: list[tuple[str, str]]) -> None:
        state[key] = "open"
        for following in links.get(key, []):
            if following in waiting:
                continue
            if state.get(following) == "open":
                cycles.append(path[path.index(following):])
            elif following not in state:
                visit(following, [*path, following])
        state[key] = "done"

    for key in list(links):
        if key not in state and key not in waiting:
            visit(key, [key])
    return cycles


def _flow_problems(bot: dict[str, Any], flow_id: str, flow: Any) -> list[dict[str, Any]]:
    if not isinstance(flow, dict) or not isinstance(flow.get("nodes"), list) or not isinstance(flow.get("edges"), list):
        return [_problem(flow_id, None, None, "a flow needs lists of nodes and edges")]
    problems, counts = [], defaultdict(int)
    if not isinstance(flow.get("variables", {}), dict):
        problems.append(_problem(flow_id, None, "variables", "variables must be an object of names and defaults"))
    for node in flow["nodes"]:
        problems += [_problem(flow_id, p["node_id"], p["field"], p["message"]) for p in validate_node(node)]
        if isinstance(node, dict) and isinstance(node.get("id"), str):
            counts[node["id"]] += 1
    problems += [_problem(flow_id, node_id, "id", f"node id {node_id!r} is used by {n} nodes")
                 for node_id, n in counts.items() if n > 1]
    nodes = nodes_by_id(flow)
    problems += _edge_problems(flow_id, flow, nodes)
    handles_of: dict[str, set[str | None]] = defaultdict(set)  # node id -> the handles its edges leave by
    for source, name in edges_by_handle(flow):
        handles_of[source].add(name)
    for node_id, node in nodes.items():
        present = handles_of[node_id]
        problems += [_problem(flow_id, node_id, "edges", why) for name, why in required_handles(node, present)
                     if name not in present]
        if node.get("type") == "jump" and _jump_target(bot, flow_id, data_of(node))[1] is None:
            problems.append(_problem(flow_id, node_id, "node_id", "the jump's target does not exist"))
    return problems


def _trigger_problems(bot: dict[str, Any]) -> list[dict[str, Any]]:
    owners: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for flow_id, flow in bot["flows"].items():
        for node in start_nodes(flow):
            for key in set(trigger_keys(data_of(node))):
                owners[key].append((flow_id, node["id"]))
    problems = [_problem(flow_id, node_id, "trigger", f"{trigger} {key!r} starts more than one node" if key
                         else "more than one start answers any message")
                for (trigger, key), starts in owners.items() if len(starts) > 1 for flow_id, node_id in starts[1:]]
    main = bot["flows"].get(bot["main_flow_id"]) if isinstance(bot.get("main_flow_id"), str) else None
    if isinstance(main, dict) and not start_nodes(main):
        problems.append(_problem(bot["main_flow_id"], None, None, "the main flow has no start node"))
    return problems


def validate_bot(bot: Any) -> list[dict[str, Any]]:
    """Every problem of the chatbot, [] when it can be published."""
    if not isinstance(bot, dict) or not isinstance(bot.get("flows"), dict) or not bot["flows"]:
        return [_problem(None, None, "flows", "a chatbot needs at least one flow")]
    problems = []
    if not isinstance(bot.get("main_flow_id"), str) or bot["main_flow_id"] not in bot["flows"]:
        problems.append(_problem(None, None, "main_flow_id", "main_flow_id must name one of the chatbot's flows"))
    if not isinstance(bot.get("variables", {}), dict):
        problems.append(_problem(None, None, "variables", "variables must be an object of names and defaults"))
    for flow_id, flow in bot["flows"].items():
        problems += _flow_problems(bot, flow_id, flow)
    if not all(isinstance(flow, dict) and isinstance(flow.get("nodes"), list) and isinstance(flow.get("edges"), list)
               for flow in bot["flows"].values()):
        return problems  # the graph checks below need every flow's node and edge lists
    problems += _trigger_problems(bot)
    links = _links(bot)
    reachable = _reachable(bot, links)
    problems += [_problem(flow_id, node_id, None, "no path from a start node reaches this node")
                 for flow_id, flow in bot["flows"].items() for node_id in nodes_by_id(flow)
                 if (flow_id, node_id) not in reachable]
    for cycle in _loops(bot, links):
        names = " → ".join(node_id for _, node_id in [*cycle, cycle[0]])
        problems.append(_problem(cycle[0][0], cycle[0][1], None,
                                 f"these nodes loop without waiting for the customer: {names}"))
    return problems
