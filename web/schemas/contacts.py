import marshmallow as ma
from webargs.fields import DelimitedList

from shared.models import AttributeType, ConsentScope, ConsentSource, ConsentState
from shared.services.consent import MessageCategory
from shared.services.contact_filters import ATTRIBUTE_OPS
from shared.services.contacts import MAX_LEAD_SCORE, SORTS
from web.schemas.common import FiltersNamedOnce, PageQueryArgsSchema, QueryArgsSchema, StrictSchema

TAG_NAME = ma.validate.Length(min=1, max=100)
SORT_CHOICES = [*SORTS, *(f"-{name}" for name in SORTS)]
LEAD_SCORE = ma.validate.Range(min=-MAX_LEAD_SCORE, max=MAX_LEAD_SCORE)


class TagRefSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()
    color = ma.fields.String(allow_none=True)


class ContactSchema(ma.Schema):
    id = ma.fields.UUID()
    wa_id = ma.fields.String(metadata={"example": "5511987654321"})
    user_id = ma.fields.String(allow_none=True, metadata={"description": "Meta's business-scoped user id, when known"})
    phone = ma.fields.String(attribute="phone_e164", metadata={"example": "+5511987654321"})
    name = ma.fields.String(allow_none=True)
    email = ma.fields.String(allow_none=True)
    profile_name = ma.fields.String(allow_none=True)
    language = ma.fields.String(allow_none=True)
    custom_attributes = ma.fields.Dict()
    lifecycle_stage = ma.fields.String()
    lead_score = ma.fields.Integer()
    tags = ma.fields.List(ma.fields.Nested(TagRefSchema))
    is_blocked = ma.fields.Boolean()
    blocked_at = ma.fields.AwareDateTime(allow_none=True)
    marketing_consent = ma.fields.Enum(ConsentState, by_value=True)
    utility_consent = ma.fields.Enum(ConsentState, by_value=True)
    first_inbound_at = ma.fields.AwareDateTime(allow_none=True)
    last_inbound_at = ma.fields.AwareDateTime(allow_none=True)
    first_outbound_at = ma.fields.AwareDateTime(allow_none=True)
    last_outbound_at = ma.fields.AwareDateTime(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class ContactPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ContactSchema))
    next_cursor = ma.fields.String(allow_none=True)


class _ProfileFields(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(max=200), allow_none=True, metadata={"example": "Ana Souza"})
    email = ma.fields.String(validate=ma.validate.Length(max=320), allow_none=True)
    language = ma.fields.String(validate=ma.validate.Length(max=20), allow_none=True, metadata={"example": "pt_BR"})
    custom_attributes = ma.fields.Dict(
        keys=ma.fields.String(), metadata={"description": "Defined attributes only; null removes a value"}
    )
    lifecycle_stage = ma.fields.String(validate=ma.validate.Length(max=50))


class ContactCreateSchema(_ProfileFields):
    phone = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=40),
        metadata={"description": "Any format; local numbers use the organization's default country",
                  "example": "+55 11 98765-4321"},
    )
    tags = ma.fields.List(ma.fields.String(validate=TAG_NAME), load_default=list)


class ContactUpdateSchema(_ProfileFields):
    phone = ma.fields.String(validate=ma.validate.Length(min=1, max=40))


class AttributeConditionSchema(StrictSchema):
    key = ma.fields.String(required=True)
    op = ma.fields.String(required=True, validate=ma.validate.OneOf(sorted(ATTRIBUTE_OPS)))
    value = ma.fields.Raw(allow_none=True)


class ContactFilterSchema(StrictSchema):
    """The one filter language: list, segments, bulk actions, exports (and later campaign audiences)."""

    tags_any = ma.fields.List(ma.fields.String(validate=TAG_NAME))
    tags_all = ma.fields.List(ma.fields.String(validate=TAG_NAME))
    tags_none = ma.fields.List(ma.fields.String(validate=TAG_NAME))
    lifecycle_stages = ma.fields.List(ma.fields.String())
    marketing_consent = ma.fields.Enum(ConsentState, by_value=True)
    utility_consent = ma.fields.Enum(ConsentState, by_value=True)
    blocked = ma.fields.Boolean(allow_none=True)
    lead_score_min = ma.fields.Integer(strict=True, validate=LEAD_SCORE)
    lead_score_max = ma.fields.Integer(strict=True, validate=LEAD_SCORE)
    created_after = ma.fields.AwareDateTime()
    created_before = ma.fields.AwareDateTime()
    last_seen_after = ma.fields.AwareDateTime()
    last_seen_before = ma.fields.AwareDateTime()
    attributes = ma.fields.List(ma.fields.Nested(AttributeConditionSchema))
    q = ma.fields.String(validate=ma.validate.Length(min=1, max=200))

    @ma.post_load
    def as_json(self, data, **kwargs):
        """Stored as JSON (segments, job params): enums and datetimes become text."""
        return {key: getattr(value, "value", value.isoformat() if hasattr(value, "isoformat") else value)
                for key, value in data.items()}


class ContactQueryArgsSchema(PageQueryArgsSchema):
    """The list's query string: lists are comma-separated; `attr` is key:op:value and may repeat."""

    tags_any = DelimitedList(ma.fields.String(validate=TAG_NAME))
    tags_all = DelimitedList(ma.fields.String(validate=TAG_NAME))
    tags_none = DelimitedList(ma.fields.String(validate=TAG_NAME))
    lifecycle_stages = DelimitedList(ma.fields.String())
    marketing_consent = ma.fields.Enum(ConsentState, by_value=True)
    utility_consent = ma.fields.Enum(ConsentState, by_value=True)
    blocked = ma.fields.Boolean()
    lead_score_min = ma.fields.Integer(validate=LEAD_SCORE)
    lead_score_max = ma.fields.Integer(validate=LEAD_SCORE)
    created_after = ma.fields.AwareDateTime()
    created_before = ma.fields.AwareDateTime()
    last_seen_after = ma.fields.AwareDateTime()
    last_seen_before = ma.fields.AwareDateTime()
    attr = ma.fields.List(
        ma.fields.String(validate=ma.validate.Regexp(r"^[a-z][a-z0-9_]*:[a-z_]+(:.*)?$")),
        metadata={"description": "custom attribute condition key:op:value, e.g. plan:eq:gold or spend:gte:100"},
    )
    q = ma.fields.String(validate=ma.validate.Length(min=1, max=200), metadata={"description": "name, phone or email"})
    sort = ma.fields.String(load_default="-created_at", validate=ma.validate.OneOf(SORT_CHOICES))

    @ma.post_load
    def to_filter(self, data, **kwargs):
        conditions = []
        for raw in data.pop("attr", []):
            key, op, *rest = raw.split(":", 2)
            value = rest[0] if rest else None
            conditions.append({"key": key, "op": op, "value": _typed(value)})
        if conditions:
            data["attributes"] = conditions
        return {key: getattr(value, "value", value.isoformat() if hasattr(value, "isoformat") else value)
                for key, value in data.items()}


def _typed(value):
    """A query-string value as the JSON scalar it most likely is (numbers, booleans), else text."""
    if value is None:
        return None
    if value in ("true", "false"):
        return value == "true"
    try:
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    except ValueError:
        return value


class ConsentChangeSchema(StrictSchema):
    scope = ma.fields.Enum(ConsentScope, by_value=True, load_default=ConsentScope.marketing)
    source = ma.fields.Enum(ConsentSource, by_value=True, load_default=ConsentSource.api)
    evidence = ma.fields.String(
        validate=ma.validate.Length(max=2000),
        metadata={"description": "What proves it: the form, the message, the checkbox text", "example": "Checkout form, box 'WhatsApp offers' ticked"},
    )


class ConsentEventSchema(ma.Schema):
    id = ma.fields.UUID()
    action = ma.fields.String(attribute="action.value")
    scope = ma.fields.String(attribute="scope.value")
    source = ma.fields.String(attribute="source.value")
    actor_user_id = ma.fields.UUID(allow_none=True)
    actor = ma.fields.String(allow_none=True)
    evidence = ma.fields.String(allow_none=True)
    occurred_at = ma.fields.AwareDateTime()


class EligibilityQueryArgsSchema(QueryArgsSchema):
    category = ma.fields.Enum(MessageCategory, by_value=True, load_default=MessageCategory.marketing)


class EligibilitySchema(ma.Schema):
    category = ma.fields.String()
    eligible = ma.fields.Boolean()
    reason = ma.fields.String(allow_none=True, metadata={"description": "deleted, blocked, invalid_number, opted_out, no_opt_in"})
    message = ma.fields.String(allow_none=True)


class LeadScoreSchema(StrictSchema):
    delta = ma.fields.Integer(strict=True, validate=LEAD_SCORE, metadata={"description": "Add (or subtract) points"})
    value = ma.fields.Integer(strict=True, validate=LEAD_SCORE, metadata={"description": "Set the score"})

    @ma.validates_schema
    def one_of(self, data, **kwargs):
        if ("delta" in data) == ("value" in data):
            raise ma.ValidationError("Give exactly one of delta or value.")


class ContactStatsSchema(ma.Schema):
    messages_in = ma.fields.Integer(attribute="messages_in_count")
    messages_out = ma.fields.Integer(attribute="messages_out_count")
    first_inbound_at = ma.fields.AwareDateTime(allow_none=True)
    last_inbound_at = ma.fields.AwareDateTime(allow_none=True)
    first_outbound_at = ma.fields.AwareDateTime(allow_none=True)
    last_outbound_at = ma.fields.AwareDateTime(allow_none=True)
    last_seen_at = ma.fields.Method("_last_seen", metadata={"description": "Last message from the contact"})

    def _last_seen(self, contact):
        return contact.last_inbound_at.isoformat() if contact.last_inbound_at else None


class BulkActionSchema(FiltersNamedOnce, StrictSchema):
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(["tag", "untag", "set_lifecycle"]))
    tags = ma.fields.List(ma.fields.String(validate=TAG_NAME))
    lifecycle_stage = ma.fields.String()
    ids = ma.fields.List(ma.fields.UUID(), validate=ma.validate.Length(min=1, max=1000))
    filters = ma.fields.Nested(ContactFilterSchema)

    @ma.validates_schema
    def target(self, data, **kwargs):
        if ("ids" in data) == ("filters" in data):
            raise ma.ValidationError("Give either ids (up to 1000, done at once) or filters (done as a job).")
        if data["action"] in ("tag", "untag") and not data.get("tags"):
            raise ma.ValidationError({"tags": ["Required for tag and untag."]})
        if data["action"] == "set_lifecycle" and not data.get("lifecycle_stage"):
            raise ma.ValidationError({"lifecycle_stage": ["Required for set_lifecycle."]})


class BulkResultSchema(ma.Schema):
    affected = ma.fields.Integer(allow_none=True, metadata={"description": "Set when done at once (ids)"})
    job_id = ma.fields.UUID(allow_none=True, metadata={"description": "Set when done as a job (filter): poll /jobs/{id}"})


class TagSchema(TagRefSchema):
    contact_count = ma.fields.Integer()
    created_at = ma.fields.AwareDateTime()


class TagCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=TAG_NAME)
    color = ma.fields.String(validate=ma.validate.Length(max=20), allow_none=True, metadata={"example": "#25D366"})


class TagUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=TAG_NAME)
    color = ma.fields.String(validate=ma.validate.Length(max=20), allow_none=True)


class SegmentSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    filters = ma.fields.Dict()
    contact_count = ma.fields.Integer(metadata={"description": "Live: counted now"})
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class SegmentCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    description = ma.fields.String(validate=ma.validate.Length(max=500), allow_none=True)
    filters = ma.fields.Nested(ContactFilterSchema, required=True)


class SegmentUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    description = ma.fields.String(validate=ma.validate.Length(max=500), allow_none=True)
    filters = ma.fields.Nested(ContactFilterSchema)


class AttributeDefinitionSchema(ma.Schema):
    key = ma.fields.String()
    label = ma.fields.String()
    type = ma.fields.Enum(AttributeType, by_value=True)


class AttributeDefinitionCreateSchema(StrictSchema):
    key = ma.fields.String(required=True, metadata={"example": "plan"})
    label = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    type = ma.fields.Enum(AttributeType, by_value=True, required=True)
