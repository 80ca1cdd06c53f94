"""A chatbot's draft: its flows, each flow's nodes and edges, and each flow's whole graph in the React Flow shape."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import chatbot_flows, chatbots, flow_graph
from web.auth import require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.chatbots import (
    EdgeCreateSchema,
    EdgeSchema,
    EdgeUpdateSchema,
    FlowCreateSchema,
    FlowSchema,
    FlowUpdateSchema,
    GraphSchema,
    GraphUpdateSchema,
    NodeCreateSchema,
    NodeSchema,
    NodeUpdateSchema,
)

blp = Blueprint("chatbot_flows", __name__, description="A chatbot's draft: flows, nodes, edges, whole graphs")

NODE_INVALID = "`node_invalid`: details.problems lists what is wrong with the node (node_id, field, message)"
MAIN_FLOW = "`main_flow_required`: a chatbot always has one main flow"


def _chatbot(chatbot_id):
    return chatbots.get_chatbot(get_session(), org_id=require_org_id(), chatbot_id=chatbot_id)


def _flow(chatbot_id, flow_id):
    return chatbot_flows.get_flow(get_session(), chatbot=_chatbot(chatbot_id), flow_id=flow_id)


@blp.route("/<chatbot_id>/flows")
class FlowList(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, FlowSchema(many=True))
    def get(self, chatbot_id):
        """The chatbot's flows, the main one first."""
        return chatbot_flows.list_flows(get_session(), chatbot=_chatbot(chatbot_id))

    @requires(Permission.chatbots_manage)
    @blp.arguments(FlowCreateSchema)
    @blp.response(201, FlowSchema)
    def post(self, body, chatbot_id):
        """Add a flow; the first one is the main flow, and `is_main: true` moves the main flow to the new one."""
        return chatbot_flows.create_flow(get_session(), chatbot=_chatbot(chatbot_id), **body)


@blp.route("/<chatbot_id>/flows/<flow_id>")
class FlowItem(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, FlowSchema)
    def get(self, chatbot_id, flow_id):
        """One flow."""
        return _flow(chatbot_id, flow_id)

    @requires(Permission.chatbots_manage)
    @blp.arguments(FlowUpdateSchema)
    @blp.response(200, FlowSchema)
    @blp.alt_response(409, description=MAIN_FLOW)
    def patch(self, body, chatbot_id, flow_id):
        """Rename, change the flow's variables, or make it the main flow."""
        chatbot = _chatbot(chatbot_id)
        flow = chatbot_flows.get_flow(get_session(), chatbot=chatbot, flow_id=flow_id)
        return chatbot_flows.update_flow(get_session(), chatbot=chatbot, flow=flow, changes=body)

    @requires(Permission.chatbots_manage)
    @blp.response(204)
    @blp.alt_response(409, description=MAIN_FLOW + ": make another flow main before deleting this one")
    def delete(self, chatbot_id, flow_id):
        """Delete a flow with its nodes and edges (published versions keep theirs)."""
        chatbot = _chatbot(chatbot_id)
        flow = chatbot_flows.get_flow(get_session(), chatbot=chatbot, flow_id=flow_id)
        chatbot_flows.delete_flow(get_session(), chatbot=chatbot, flow=flow)


@blp.route("/<chatbot_id>/flows/<flow_id>/graph")
class FlowGraph(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, GraphSchema)
    def get(self, chatbot_id, flow_id):
        """The flow's nodes and edges in the shape a React Flow editor loads."""
        return flow_graph.get_graph(get_session(), flow=_flow(chatbot_id, flow_id))

    @requires(Permission.chatbots_manage)
    @blp.arguments(GraphUpdateSchema)
    @blp.response(200, GraphSchema)
    def put(self, body, chatbot_id, flow_id):
        """Replace every node and edge of the flow at once, as a React Flow editor saves it. All or nothing:
        a 422 `graph_invalid` lists every problem (each node checked as when saved alone, ids unique, edges
        between nodes of the graph)."""
        return flow_graph.replace_graph(get_session(), flow=_flow(chatbot_id, flow_id), **body)


@blp.route("/<chatbot_id>/flows/<flow_id>/nodes")
class NodeList(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, NodeSchema(many=True))
    def get(self, chatbot_id, flow_id):
        """The flow's nodes, by id."""
        return [flow_graph.node_json(n) for n in flow_graph.list_nodes(get_session(), flow=_flow(chatbot_id, flow_id))]

    @requires(Permission.chatbots_manage)
    @blp.arguments(NodeCreateSchema)
    @blp.response(201, NodeSchema)
    @blp.alt_response(409, description="`node_id_taken`: the flow has a node with this id")
    def post(self, body, chatbot_id, flow_id):
        """Add a node; it is checked against its type's rules (422 `node_invalid` listing the problems)."""
        return flow_graph.node_json(flow_graph.create_node(get_session(), flow=_flow(chatbot_id, flow_id), node=body))


@blp.route("/<chatbot_id>/flows/<flow_id>/nodes/<node_id>")
class NodeItem(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, NodeSchema)
    def get(self, chatbot_id, flow_id, node_id):
        """One node."""
        return flow_graph.node_json(flow_graph.get_node(get_session(), flow=_flow(chatbot_id, flow_id), node_id=node_id))

    @requires(Permission.chatbots_manage)
    @blp.arguments(NodeUpdateSchema)
    @blp.response(200, NodeSchema)
    def patch(self, body, chatbot_id, flow_id, node_id):
        """Change a node's type, position or data; the result is checked as a new node is (422 `node_invalid`)."""
        node = flow_graph.get_node(get_session(), flow=_flow(chatbot_id, flow_id), node_id=node_id)
        return flow_graph.node_json(flow_graph.update_node(get_session(), node=node, changes=body))

    @requires(Permission.chatbots_manage)
    @blp.response(204)
    def delete(self, chatbot_id, flow_id, node_id):
        """Delete a node and every edge to or from it."""
        flow_graph.delete_node(get_session(), node=flow_graph.get_node(get_session(), flow=_flow(chatbot_id, flow_id),
                                                                       node_id=node_id))


@blp.route("/<chatbot_id>/flows/<flow_id>/edges")
class EdgeList(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, EdgeSchema(many=True))
    def get(self, chatbot_id, flow_id):
        """The flow's edges, by id."""
        return [flow_graph.edge_json(e) for e in flow_graph.list_edges(get_session(), flow=_flow(chatbot_id, flow_id))]

    @requires(Permission.chatbots_manage)
    @blp.arguments(EdgeCreateSchema)
    @blp.response(201, EdgeSchema)
    @blp.alt_response(409, description="`edge_id_taken`: the flow has an edge with this id")
    def post(self, body, chatbot_id, flow_id):
        """Join two nodes of the flow (422 `edge_dangling` when either is not one of them)."""
        return flow_graph.edge_json(flow_graph.create_edge(get_session(), flow=_flow(chatbot_id, flow_id), edge=body))


@blp.route("/<chatbot_id>/flows/<flow_id>/edges/<edge_id>")
class EdgeItem(MethodView):
    @requires(Permission.chatbots_read)
    @blp.response(200, EdgeSchema)
    def get(self, chatbot_id, flow_id, edge_id):
        """One edge."""
        return flow_graph.edge_json(flow_graph.get_edge(get_session(), flow=_flow(chatbot_id, flow_id), edge_id=edge_id))

    @requires(Permission.chatbots_manage)
    @blp.arguments(EdgeUpdateSchema)
    @blp.response(200, EdgeSchema)
    def patch(self, body, chatbot_id, flow_id, edge_id):
        """Reconnect an edge or change the branch it leaves from (422 `edge_dangling` for a missing node)."""
        flow = _flow(chatbot_id, flow_id)
        edge = flow_graph.get_edge(get_session(), flow=flow, edge_id=edge_id)
        return flow_graph.edge_json(flow_graph.update_edge(get_session(), flow=flow, edge=edge, changes=body))

    @requires(Permission.chatbots_manage)
    @blp.response(204)
    def delete(self, chatbot_id, flow_id, edge_id):
        """Delete an edge."""
        flow = _flow(chatbot_id, flow_id)
        flow_graph.delete_edge(get_session(), edge=flow_graph.get_edge(get_session(), flow=flow, edge_id=edge_id))
