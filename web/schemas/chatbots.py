"""Chatbots, their flows, and flow graphs in the React Flow shape (`sourceHandle` keeps React Flow's spelling)."""

import marshmallow as ma

from web.schemas.common import QueryArgsSchema, StrictSchema

NAME = ma.validate.Length(min=1, max=100)
# A node's or edge's own id names it in URLs and in every edge: kept to characters a path carries as they are.
GRAPH_ID = ma.validate.Regexp(r"^[A-Za-z0-9_.:-]{1,100}$",
                              error="1 to 100 letters, digits, '_', '.', ':' or '-'.")
MAX_NODES = 500
MAX_EDGES = 2000
VARIABLES = {"metadata": {"description": "{name: default value}", "example": {"plan": "basic"}}}


class ChatbotSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String(metadata={"example": "Support bot"})
    description = ma.fields.String(allow_none=True)
    is_active = ma.fields.Boolean()
    variables = ma.fields.Dict(keys=ma.fields.String(), **VARIABLES)
    live_version = ma.fields.Integer(allow_none=True, metadata={
        "description": "The published version new sessions start on; null until the first publish"})
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class ChatbotCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=NAME)
    description = ma.fields.String(validate=ma.validate.Length(max=500), allow_none=True)
    variables = ma.fields.Dict(keys=ma.fields.String(validate=NAME), **VARIABLES)


class ChatbotUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=NAME)
    description = ma.fields.String(validate=ma.validate.Length(max=500), allow_none=True)
    variables = ma.fields.Dict(keys=ma.fields.String(validate=NAME), **VARIABLES)


class FlowSchema(ma.Schema):
    id = ma.fields.UUID()
    chatbot_id = ma.fields.UUID()
    name = ma.fields.String(metadata={"example": "Main menu"})
    is_main = ma.fields.Boolean(metadata={"description": "Where a session starts; exactly one flow per chatbot"})
    variables = ma.fields.Dict(keys=ma.fields.String(), **VARIABLES)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class FlowCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=NAME)
    is_main = ma.fields.Boolean(metadata={"description": "Make this the main flow (the first flow always is)"})
    variables = ma.fields.Dict(keys=ma.fields.String(validate=NAME), **VARIABLES)


class FlowUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=NAME)
    is_main = ma.fields.Boolean(metadata={"description": "true moves the main flow here; false is refused on it"})
    variables = ma.fields.Dict(keys=ma.fields.String(validate=NAME), **VARIABLES)


class PositionSchema(StrictSchema):
    x = ma.fields.Float(required=True)
    y = ma.fields.Float(required=True)


NODE_TYPE = {"description": "start, message, question, condition, action, api_call, ai_prompt, jump, end, handoff",
             "example": "message"}
NODE_DATA = {"description": "What the node does; its shape per type is documented in shared/flows",
             "example": {"text": "Hello {{contact.name}}"}}


class NodeSchema(ma.Schema):
    id = ma.fields.String()
    type = ma.fields.String(metadata=NODE_TYPE)
    position = ma.fields.Nested(PositionSchema)
    data = ma.fields.Dict(keys=ma.fields.String(), metadata=NODE_DATA)


class NodeCreateSchema(StrictSchema):
    id = ma.fields.String(required=True, validate=GRAPH_ID)
    type = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=30), metadata=NODE_TYPE)
    position = ma.fields.Nested(PositionSchema, required=True)
    data = ma.fields.Dict(keys=ma.fields.String(), load_default=dict, metadata=NODE_DATA)


class NodeUpdateSchema(StrictSchema):
    type = ma.fields.String(validate=ma.validate.Length(min=1, max=30), metadata=NODE_TYPE)
    position = ma.fields.Nested(PositionSchema)
    data = ma.fields.Dict(keys=ma.fields.String(), metadata=NODE_DATA)


SOURCE_HANDLE = {"data_key": "sourceHandle", "attribute": "sourceHandle", "allow_none": True,
                 "metadata": {"description": "Which outgoing branch of the source node (e.g. a button id); "
                                             "null for its only one"}}


class EdgeSchema(ma.Schema):
    id = ma.fields.String()
    source = ma.fields.String()
    target = ma.fields.String()
    source_handle = ma.fields.String(**SOURCE_HANDLE)


class EdgeCreateSchema(StrictSchema):
    id = ma.fields.String(required=True, validate=GRAPH_ID)
    source = ma.fields.String(required=True, validate=GRAPH_ID)
    target = ma.fields.String(required=True, validate=GRAPH_ID)
    source_handle = ma.fields.String(validate=ma.validate.Length(max=100), load_default=None, **SOURCE_HANDLE)


class EdgeUpdateSchema(StrictSchema):
    source = ma.fields.String(validate=GRAPH_ID)
    target = ma.fields.String(validate=GRAPH_ID)
    source_handle = ma.fields.String(validate=ma.validate.Length(max=100), **SOURCE_HANDLE)


class GraphSchema(ma.Schema):
    nodes = ma.fields.List(ma.fields.Nested(NodeSchema))
    edges = ma.fields.List(ma.fields.Nested(EdgeSchema))


# What React Flow's own export (`toObject()`) adds to nodes, edges and the graph: the editor's view state, not the
# flow. A graph saved as the editor exports it is taken with these dropped; any other unknown field is refused.
REACT_FLOW_NODE_VIEW = frozenset({"width", "height", "measured", "selected", "dragging", "resizing", "positionAbsolute",
                                  "sourcePosition", "targetPosition", "hidden", "zIndex", "draggable", "selectable",
                                  "connectable", "deletable", "focusable", "style", "className", "parentId", "extent",
                                  "expandParent", "ariaLabel", "origin", "dragHandle"})
REACT_FLOW_EDGE_VIEW = frozenset({"targetHandle", "type", "animated", "label", "labelStyle", "labelShowBg",
                                  "labelBgStyle", "style", "className", "markerStart", "markerEnd", "selected",
                                  "hidden", "zIndex", "interactionWidth", "focusable", "deletable", "selectable",
                                  "pathOptions", "ariaLabel"})
REACT_FLOW_GRAPH_VIEW = frozenset({"viewport"})


def _without(keys: frozenset[str]):
    @ma.pre_load
    def drop(self, data, **kwargs):
        return {k: v for k, v in data.items() if k not in keys} if isinstance(data, dict) else data

    return drop


class GraphNodeSchema(NodeCreateSchema):
    _drop_view_state = _without(REACT_FLOW_NODE_VIEW)


class GraphEdgeSchema(EdgeCreateSchema):
    _drop_view_state = _without(REACT_FLOW_EDGE_VIEW)


class GraphUpdateSchema(StrictSchema):
    nodes = ma.fields.List(ma.fields.Nested(GraphNodeSchema), required=True,
                           validate=ma.validate.Length(max=MAX_NODES))
    edges = ma.fields.List(ma.fields.Nested(GraphEdgeSchema), required=True,
                           validate=ma.validate.Length(max=MAX_EDGES))
    _drop_view_state = _without(REACT_FLOW_GRAPH_VIEW)


class VersionSchema(ma.Schema):
    number = ma.fields.Integer()
    published_at = ma.fields.AwareDateTime()
    published_by_id = ma.fields.UUID(allow_none=True)


class VersionDetailSchema(VersionSchema):
    content = ma.fields.Dict(metadata={
        "description": "The chatbot as published: {chatbot_id, main_flow_id, flows, variables}"})


class RollbackSchema(StrictSchema):
    version = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1, max=2**31 - 1))


class SimulatedMessageSchema(StrictSchema):
    type = ma.fields.String(required=True, validate=ma.validate.OneOf(["text", "button", "list", "timeout"]),
                            metadata={"description": "timeout: the customer stays silent past the waiting "
                                                     "question's deadline"})
    text = ma.fields.String(validate=ma.validate.Length(max=4096))
    id = ma.fields.String(validate=ma.validate.Length(min=1, max=256),
                          metadata={"description": "The button's or list row's id (never its title)"})
    after_seconds = ma.fields.Float(validate=ma.validate.Range(min=0, max=7 * 24 * 3600),
                                    metadata={"description": "Time that passes before this message"})

    @ma.validates_schema
    def _what_each_type_carries(self, data, **kwargs):
        if data.get("type") == "text" and "text" not in data:
            raise ma.ValidationError("A text message carries text.", "text")
        if data.get("type") in ("button", "list") and "id" not in data:
            raise ma.ValidationError(f"A {data['type']} answer carries the id it chose.", "id")


class SimulatedContactSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(max=200))
    phone = ma.fields.String(validate=ma.validate.Length(max=32))
    email = ma.fields.String(validate=ma.validate.Length(max=254))
    lead_score = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=-10**9, max=10**9))
    lifecycle_stage = ma.fields.String(validate=ma.validate.Length(max=50))
    tags = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=100)), validate=ma.validate.Length(max=100))
    attributes = ma.fields.Dict(keys=ma.fields.String(validate=ma.validate.Length(max=100)))


class SimulateSchema(StrictSchema):
    messages = ma.fields.List(ma.fields.Nested(SimulatedMessageSchema), required=True,
                              validate=ma.validate.Length(max=100))
    version = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=2**31 - 1), metadata={
        "description": "A published version; the draft when omitted"})
    contact = ma.fields.Nested(SimulatedContactSchema, metadata={
        "description": "The simulated contact; no real contact is read or changed"})


class SimulationSchema(ma.Schema):
    transcript = ma.fields.List(ma.fields.Dict())
    variables = ma.fields.Dict()
    status = ma.fields.String(metadata={"description": "waiting, ended, handoff, or not_started when no message "
                                                       "matched a trigger"})
    actions = ma.fields.List(ma.fields.Dict(), metadata={"description": "What the bot would have done besides "
                                                                       "sending (tag, handoff, call_api, ...)"})
    contact = ma.fields.Dict(allow_none=True, metadata={"description": "The simulated contact after the actions"})
    errors = ma.fields.List(ma.fields.String())


class StatsQueryArgsSchema(QueryArgsSchema):
    from_ = ma.fields.AwareDateTime(data_key="from", metadata={
        "description": "Sessions started at or after this time (ISO 8601 with an offset); default: 7 days ago"})
    to = ma.fields.AwareDateTime(metadata={"description": "Sessions started before this time; default: now"})


class SessionCountsSchema(ma.Schema):
    started = ma.fields.Integer()
    completed = ma.fields.Integer(metadata={"description": "Reached the end of the flow"})
    handed_off = ma.fields.Integer(metadata={"description": "Handed to an agent or the queue"})
    timed_out = ma.fields.Integer(metadata={"description": "Sessions in which a question's timeout fired"})
    dropped = ma.fields.Integer(metadata={
        "description": "Ended before finishing: an agent took over, the conversation was closed, the customer went silent"})
    active = ma.fields.Integer(metadata={"description": "Still running or waiting for the customer"})


class NodeCountsSchema(SessionCountsSchema):
    flow_id = ma.fields.String()
    node_id = ma.fields.String()
    type = ma.fields.String(allow_none=True)
    reached = ma.fields.Integer(metadata={"description": "Sessions that reached this node"})
    started = None


class ChatbotStatsSchema(ma.Schema):
    from_ = ma.fields.AwareDateTime(data_key="from", attribute="from")
    to = ma.fields.AwareDateTime()
    sessions = ma.fields.Nested(SessionCountsSchema)
    nodes = ma.fields.List(ma.fields.Nested(NodeCountsSchema), metadata={
        "description": "Per node: sessions that reached it, timed out on it, and that completed, were handed off, "
                       "dropped or still wait there (their last node)"})
