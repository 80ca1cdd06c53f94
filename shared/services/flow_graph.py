"""Bots pipeline: the graph of one draft flow, its nodes and edges, one at a time or whole.

Nodes and edges are read and written in the React Flow shape the interpreter also reads
(`{"id", "type", "position": {"x", "y"}, "data"}` and `{"id", "source", "target", "sourceHandle"}`).
Every node is checked by the interpreter's own rules (shared.flows.validate_node) when it is saved, so a draft
holds no node the interpreter would not understand; whole-graph rules (reachability, handled buttons, ...)
wait for publish. An edge joins two nodes of its flow: the service says which end is missing, the composite
foreign keys make it impossible anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from shared import flows
from shared.errors import ConflictError, InvalidInputError, NotFoundError
from shared.models import ChatbotFlow, FlowEdge, FlowNode


class NodeNotFoundError(NotFoundError):
    code = "node_not_found"


class EdgeNotFoundError(NotFoundError):
    code = "edge_not_found"


class NodeIdTakenError(ConflictError):
    code = "node_id_taken"


class EdgeIdTakenError(ConflictError):
    code = "edge_id_taken"


class NodeInvalidError(InvalidInputError):
    code = "node_invalid"


class EdgeDanglingError(InvalidInputError):
    code = "edge_dangling"


class GraphInvalidError(InvalidInputError):
    code = "graph_invalid"


def node_json(node: FlowNode) -> dict[str, Any]:
    return {"id": node.node_id, "type": node.type, "position": {"x": node.position_x, "y": node.position_y},
            "data": node.data}


def edge_json(edge: FlowEdge) -> dict[str, Any]:
    return {"id": edge.edge_id, "source": edge.source, "target": edge.target, "sourceHandle": edge.source_handle}


def _new_node(flow: ChatbotFlow, node: dict[str, Any]) -> FlowNode:
    return FlowNode(organization_id=flow.organization_id, flow_id=flow.id, node_id=node["id"], type=node["type"],
                    position_x=node["position"]["x"], position_y=node["position"]["y"], data=node.get("data") or {})


def _new_edge(flow: ChatbotFlow, edge: dict[str, Any]) -> FlowEdge:
    return FlowEdge(organization_id=flow.organization_id, flow_id=flow.id, edge_id=edge["id"],
                    source=edge["source"], target=edge["target"], source_handle=edge.get("sourceHandle"))


def _check_node(node: dict[str, Any]) -> None:
    problems = flows.validate_node(node)
    if problems:
        raise NodeInvalidError(f"Node {node['id']!r} is not valid: " + "; ".join(p["message"] for p in problems),
                               details={"problems": problems})


# nodes

def list_nodes(session: Session, *, flow: ChatbotFlow) -> list[FlowNode]:
    return list(session.execute(
        select(FlowNode).where(FlowNode.flow_id == flow.id).order_by(FlowNode.node_id)
    ).scalars())


def _find_node(session: Session, flow: ChatbotFlow, node_id: str) -> FlowNode | None:
    return session.execute(
        select(FlowNode).where(FlowNode.flow_id == flow.id, FlowNode.node_id == node_id)
    ).scalar_one_or_none()


def get_node(session: Session, *, flow: ChatbotFlow, node_id: str) -> FlowNode:
    node = _find_node(session, flow, node_id)
    if node is None:
        raise NodeNotFoundError(f"node {node_id} not found")
    return node


def create_node(session: Session, *, flow: ChatbotFlow, node: dict[str, Any]) -> FlowNode:
    if _find_node(session, flow, node["id"]) is not None:
        raise NodeIdTakenError(f"The flow already has a node {node['id']!r}", details={"field": "id"})
    _check_node(node)
    row = _new_node(flow, node)
    session.add(row)
    session.flush()
    return row


def update_node(session: Session, *, node: FlowNode, changes: dict[str, Any]) -> FlowNode:
    """Type, position and data change; the id is the node's name in every edge and cannot."""
    merged = {**node_json(node), **changes}
    _check_node(merged)
    node.type, node.data = merged["type"], merged["data"]
    node.position_x, node.position_y = merged["position"]["x"], merged["position"]["y"]
    session.flush()
    return node


def delete_node(session: Session, *, node: FlowNode) -> None:
    """The node and every edge to or from it."""
    session.execute(delete(FlowEdge).where(FlowEdge.flow_id == node.flow_id,
                                           or_(FlowEdge.source == node.node_id, FlowEdge.target == node.node_id)))
    session.delete(node)
    session.flush()


# edges

def list_edges(session: Session, *, flow: ChatbotFlow) -> list[FlowEdge]:
    return list(session.execute(
        select(FlowEdge).where(FlowEdge.flow_id == flow.id).order_by(FlowEdge.edge_id)
    ).scalars())


def _find_edge(session: Session, flow: ChatbotFlow, edge_id: str) -> FlowEdge | None:
    return session.execute(
        select(FlowEdge).where(FlowEdge.flow_id == flow.id, FlowEdge.edge_id == edge_id)
    ).scalar_one_or_none()


def get_edge(session: Session, *, flow: ChatbotFlow, edge_id: str) -> FlowEdge:
    edge = _find_edge(session, flow, edge_id)
    if edge is None:
        raise EdgeNotFoundError(f"edge {edge_id} not found")
    return edge


def _check_ends(session: Session, flow: ChatbotFlow, edge: dict[str, Any]) -> None:
    missing = [end for end in ("source", "target") if _find_node(session, flow, edge[end]) is None]
    if missing:
        raise EdgeDanglingError(
            "An edge joins two nodes of its flow: " + ", ".join(f"{end} {edge[end]!r} is no node of it" for end in missing),
            details={"fields": missing},
        )


def create_edge(session: Session, *, flow: ChatbotFlow, edge: dict[str, Any]) -> FlowEdge:
    if _find_edge(session, flow, edge["id"]) is not None:
        raise EdgeIdTakenError(f"The flow already has an edge {edge['id']!r}", details={"field": "id"})
    _check_ends(session, flow, edge)
    row = _new_edge(flow, edge)
    session.add(row)
    session.flush()
    return row


def update_edge(session: Session, *, flow: ChatbotFlow, edge: FlowEdge, changes: dict[str, Any]) -> FlowEdge:
    merged = {**edge_json(edge), **changes}
    _check_ends(session, flow, merged)
    edge.source, edge.target, edge.source_handle = merged["source"], merged["target"], merged["sourceHandle"]
    session.flush()
    return edge


def delete_edge(session: Session, *, edge: FlowEdge) -> None:
    session.delete(edge)
    session.flush()


# the whole graph

def get_graph(session: Session, *, flow: ChatbotFlow) -> dict[str, list[dict[str, Any]]]:
    return {"nodes": [node_json(n) for n in list_nodes(session, flow=flow)],
            "edges": [edge_json(e) for e in list_edges(session, flow=flow)]}


def graph_problems(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Everything wrong with a graph given whole, each problem naming its node or edge."""
    problems: list[dict[str, Any]] = []
    node_ids: set[str] = set()
    for node in nodes:
        if node["id"] in node_ids:
            problems.append({"node_id": node["id"], "field": "id", "message": "Two nodes have this id"})
        node_ids.add(node["id"])
        problems += flows.validate_node(node)
    edge_ids: set[str] = set()
    for edge in edges:
        if edge["id"] in edge_ids:
            problems.append({"edge_id": edge["id"], "field": "id", "message": "Two edges have this id"})
        edge_ids.add(edge["id"])
        problems += [{"edge_id": edge["id"], "field": end, "message": f"No node {edge[end]!r} in this flow"}
                     for end in ("source", "target") if edge[end] not in node_ids]
    return problems


def replace_graph(session: Session, *, flow: ChatbotFlow, nodes: list[dict[str, Any]],
                  edges: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Replace every node and edge of the flow, all or nothing (the request's one transaction)."""
    problems = graph_problems(nodes, edges)
    if problems:
        raise GraphInvalidError(f"The graph has {len(problems)} problem(s); see details.problems",
                                details={"problems": problems})
    session.execute(delete(FlowEdge).where(FlowEdge.flow_id == flow.id))
    session.execute(delete(FlowNode).where(FlowNode.flow_id == flow.id))
    session.add_all([_new_node(flow, n) for n in nodes])
    session.flush()  # the nodes first: the edges' foreign keys name them
    session.add_all([_new_edge(flow, e) for e in edges])
    session.flush()
    return get_graph(session, flow=flow)
