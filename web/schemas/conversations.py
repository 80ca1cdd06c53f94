import marshmallow as ma
from webargs.fields import DelimitedList

from shared.models import ConversationOwner, ConversationStatus, Direction, MessageStatus, Priority, SenderType
from shared.services.messages import SENDABLE_TYPES
from web.schemas.common import PageQueryArgsSchema, StrictSchema

SET_STATUSES = [s.value for s in ConversationStatus]


class ConversationSchema(ma.Schema):
    id = ma.fields.UUID()
    contact_id = ma.fields.UUID()
    number_id = ma.fields.UUID()
    status = ma.fields.Enum(ConversationStatus, by_value=True)
    priority = ma.fields.Enum(Priority, by_value=True)
    owner = ma.fields.Enum(ConversationOwner, by_value=True)
    assigned_agent_id = ma.fields.UUID(allow_none=True)
    department_id = ma.fields.UUID(allow_none=True)
    waiting_since = ma.fields.AwareDateTime(allow_none=True, metadata={"description": "In the assignment queue since"})
    window_expires_at = ma.fields.AwareDateTime(allow_none=True)
    referral = ma.fields.Dict(allow_none=True, metadata={
        "description": "The click-to-WhatsApp ad or post the customer came from (source_type, source_id, source_url, "
                       "headline, body, media_type, ctwa_clid, at)"})
    free_entry_until = ma.fields.AwareDateTime(allow_none=True, metadata={
        "description": "End of the 72 hours Meta opens free of charge after a click-to-WhatsApp ad"})
    window_open = ma.fields.Method("_window_open")
    first_response_at = ma.fields.AwareDateTime(allow_none=True)
    resolved_at = ma.fields.AwareDateTime(allow_none=True)
    last_message_at = ma.fields.AwareDateTime(allow_none=True)
    last_message_preview = ma.fields.String(allow_none=True)
    last_inbound_at = ma.fields.AwareDateTime(allow_none=True)
    last_outbound_at = ma.fields.AwareDateTime(allow_none=True)
    unread_count = ma.fields.Integer()
    messages_in_count = ma.fields.Integer()
    messages_out_count = ma.fields.Integer()
    created_at = ma.fields.AwareDateTime()

    def _window_open(self, conversation) -> bool:
        from shared.models.base import utcnow

        return conversation.window_open(utcnow())


class ConversationPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ConversationSchema))
    next_cursor = ma.fields.String(allow_none=True)


def _csv_enum(enum_cls):
    return DelimitedList(ma.fields.Enum(enum_cls, by_value=True))


class ConversationQueryArgsSchema(PageQueryArgsSchema):
    status = _csv_enum(ConversationStatus)
    priority = _csv_enum(Priority)
    owner = _csv_enum(ConversationOwner)
    assigned_agent_id = ma.fields.UUID()
    department_id = ma.fields.UUID()
    number_id = ma.fields.UUID()
    unassigned = ma.fields.Boolean()
    has_unread = ma.fields.Boolean()
    window_open = ma.fields.Boolean()
    tag = ma.fields.String(metadata={"description": "Contact tag name"})


class ConversationUpdateSchema(StrictSchema):
    status = ma.fields.Enum(ConversationStatus, by_value=True)
    priority = ma.fields.Enum(Priority, by_value=True)


class AssignSchema(StrictSchema):
    agent_id = ma.fields.UUID(metadata={"description": "Assign or transfer to this agent"})
    department_id = ma.fields.UUID(metadata={"description": "Route to this department (auto-assigned within it)"})


class MessagePricingSchema(ma.Schema):
    """Meta's `pricing` object of the latest status that carried one."""

    billable = ma.fields.Boolean(allow_none=True, metadata={"description": "Deprecated by Meta, still sent"})
    pricing_model = ma.fields.String(allow_none=True, metadata={"example": "PMP"})
    category = ma.fields.String(allow_none=True, metadata={"example": "marketing"})
    type = ma.fields.String(allow_none=True, metadata={"example": "regular"})


class MetaConversationSchema(ma.Schema):
    """Meta's (legacy) `conversation` object of the latest status that carried one."""

    id = ma.fields.String(allow_none=True)
    origin_type = ma.fields.String(allow_none=True, metadata={"example": "marketing"})
    expires_at = ma.fields.String(allow_none=True, metadata={  # stored as ISO 8601 text in the jsonb
        "format": "date-time", "description": "Meta's expiration_timestamp (sent only on the first status)"})


class MessageSchema(ma.Schema):
    id = ma.fields.UUID()
    conversation_id = ma.fields.UUID()
    contact_id = ma.fields.UUID()
    number_id = ma.fields.UUID()
    direction = ma.fields.Enum(Direction, by_value=True)
    type = ma.fields.String()
    content = ma.fields.Raw()
    wamid = ma.fields.String(allow_none=True)
    status = ma.fields.Enum(MessageStatus, by_value=True)
    queued_at = ma.fields.AwareDateTime(allow_none=True)
    sent_at = ma.fields.AwareDateTime(allow_none=True)
    delivered_at = ma.fields.AwareDateTime(allow_none=True)
    read_at = ma.fields.AwareDateTime(allow_none=True)
    failed_at = ma.fields.AwareDateTime(allow_none=True)
    error_code = ma.fields.String(allow_none=True)
    error_message = ma.fields.String(allow_none=True)
    context_wamid = ma.fields.String(allow_none=True, metadata={"description": "The message this one replies to"})
    from_user_id = ma.fields.String(allow_none=True, metadata={"description": "Inbound: Meta's business-scoped user id"})
    forwarded = ma.fields.Boolean(metadata={"description": "Inbound: forwarded by the customer (never a reply)"})
    frequently_forwarded = ma.fields.Boolean(metadata={"description": "Inbound: forwarded many times"})
    referral = ma.fields.Dict(allow_none=True)
    reaction = ma.fields.Dict(attribute="shown_reaction", allow_none=True, metadata={
        "description": "The customer's reaction to this message: {emoji, at} (null: none, or taken back)"})
    pricing = ma.fields.Nested(MessagePricingSchema, allow_none=True,
                               metadata={"description": "Outbound: Meta's pricing, from status webhooks"})
    meta_conversation = ma.fields.Nested(MetaConversationSchema, allow_none=True,
                                         metadata={"description": "Outbound: Meta's conversation, from statuses"})
    sender_type = ma.fields.Enum(SenderType, by_value=True)
    sender_user_id = ma.fields.UUID(allow_none=True)
    template_id = ma.fields.UUID(allow_none=True)
    occurred_at = ma.fields.AwareDateTime(allow_none=True)
    media_id = ma.fields.String(allow_none=True)
    has_media_file = ma.fields.Method("_has_media_file")
    created_at = ma.fields.AwareDateTime()

    def _has_media_file(self, message) -> bool:
        return message.media_key is not None


class MessagePageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(MessageSchema))
    next_cursor = ma.fields.String(allow_none=True)


class MessageCreateSchema(StrictSchema):
    """Meta's own body object under the type's key (`text`, `image`, `interactive`, ...); templates by id."""

    type = ma.fields.String(required=True, validate=ma.validate.OneOf(SENDABLE_TYPES),
                            metadata={"example": "text"})
    text = ma.fields.Dict(metadata={"example": {"body": "Hi! How can we help?"}})
    image = ma.fields.Dict()
    video = ma.fields.Dict()
    audio = ma.fields.Dict()
    document = ma.fields.Dict()
    sticker = ma.fields.Dict()
    interactive = ma.fields.Dict()
    reaction = ma.fields.Dict()
    location = ma.fields.Dict()
    contacts = ma.fields.List(ma.fields.Dict())
    template_id = ma.fields.UUID()
    variables = ma.fields.Dict(metadata={"description": "Template variables by placeholder: {\"1\": \"Ana\"}"})
    reply_to = ma.fields.String(metadata={"description": "A message id (or wamid) of this conversation to quote"})

    @ma.validates_schema
    def _has_its_body(self, data, **_):
        if data["type"] == "template":
            if "template_id" not in data:
                raise ma.ValidationError("a template message needs template_id", "template_id")
        elif data["type"] not in data:
            raise ma.ValidationError(f"a {data['type']} message needs its `{data['type']}` object", data["type"])


class DirectMessageCreateSchema(MessageCreateSchema):
    number_id = ma.fields.UUID(required=True, metadata={"description": "The WhatsApp number to send from"})
    to = ma.fields.String(metadata={"description": "Phone number (E.164, or local to the organization's country)"})
    contact_id = ma.fields.UUID()

    @ma.validates_schema
    def _has_a_recipient(self, data, **_):
        if ("to" in data) == ("contact_id" in data):
            raise ma.ValidationError("give exactly one of `to` or `contact_id`", "to")


class TimelineEventSchema(ma.Schema):
    event = ma.fields.String()
    actor = ma.fields.String(allow_none=True)
    data = ma.fields.Dict()
    occurred_at = ma.fields.AwareDateTime()


class MediaUploadSchema(ma.Schema):
    file = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class MediaUploadedSchema(ma.Schema):
    upload = ma.fields.String(metadata={"description": "Name it in a media message: {\"image\": {\"upload\": ...}}"})
    mime_type = ma.fields.String()
    size_bytes = ma.fields.Integer()
