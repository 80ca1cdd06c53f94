"""Campaign request and response shapes."""

import marshmallow as ma

from shared.models import CampaignStatus
from web.schemas.common import PageQueryArgsSchema, QueryArgsSchema, StrictSchema

AUDIENCE_EXAMPLE = {"type": "tags", "tags_any": ["vip"], "tags_none": ["churned"]}
VARIABLES_EXAMPLE = {"body": [{"source": "contact.first_name", "fallback": "there"},
                              {"source": "attribute.coupon", "fallback": "WELCOME10"}]}


class CampaignWriteSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    description = ma.fields.String(allow_none=True, validate=ma.validate.Length(max=2000))
    template_id = ma.fields.UUID(allow_none=True)
    variables = ma.fields.Dict(metadata={
        "description": "Each template placeholder's source per recipient: literal, contact.name, contact.first_name, "
                       "contact.phone, contact.email or attribute.<key>, with a fallback for empty values",
        "example": VARIABLES_EXAMPLE})
    audience = ma.fields.Dict(metadata={
        "description": "type all; tags (tags_any / tags_all / tags_none); segment (segment_id); list (import_id of "
                       "a contacts import of the list's CSV)", "example": AUDIENCE_EXAMPLE})
    number_ids = ma.fields.List(ma.fields.UUID(), metadata={
        "description": "Numbers that share the campaign's load (default: every number of the organization)"})
    rate_limit_per_second = ma.fields.Integer(strict=True, allow_none=True, validate=ma.validate.Range(min=1, max=1000),
                                              metadata={"description": "A cap under the numbers' own pace"})
    delay_ms = ma.fields.Integer(strict=True, allow_none=True, validate=ma.validate.Range(min=1, max=3_600_000),
                                 metadata={"description": "At least this long between two messages (a cap)"})
    attribution_hours = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=720), metadata={
        "description": "A recipient's message within this long after the send counts as a reply"})
    validity_hours = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=720), metadata={
        "description": "How long after the start a recipient held by Meta's marketing cap (131049) is tried again"})


class CampaignCreateSchema(CampaignWriteSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))


class CampaignSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()
    description = ma.fields.String(allow_none=True)
    status = ma.fields.Enum(CampaignStatus, by_value=True)
    template_id = ma.fields.UUID(allow_none=True)
    variables = ma.fields.Dict()
    audience = ma.fields.Dict()
    number_ids = ma.fields.List(ma.fields.UUID())
    rate_limit_per_second = ma.fields.Integer(allow_none=True)
    delay_ms = ma.fields.Integer(allow_none=True)
    attribution_hours = ma.fields.Integer()
    validity_hours = ma.fields.Integer()
    scheduled_at = ma.fields.AwareDateTime(allow_none=True)
    started_at = ma.fields.AwareDateTime(allow_none=True)
    paused_at = ma.fields.AwareDateTime(allow_none=True)
    pause_reason = ma.fields.String(allow_none=True)
    pause_message = ma.fields.String(allow_none=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    recipients_total = ma.fields.Integer()
    suppressed_total = ma.fields.Integer()
    created_by_id = ma.fields.UUID(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class CampaignListArgsSchema(QueryArgsSchema):
    status = ma.fields.Enum(CampaignStatus, by_value=True, load_default=None)


class ScheduleSchema(StrictSchema):
    scheduled_at = ma.fields.DateTime(required=True, metadata={
        "description": "When to start; without an offset it is the organization's local time",
        "example": "2026-12-24T09:00:00"})


class PreviewArgsSchema(QueryArgsSchema):
    limit = ma.fields.Integer(load_default=5, validate=ma.validate.Range(min=1, max=20))


class PreviewItemSchema(ma.Schema):
    contact_id = ma.fields.UUID()
    phone = ma.fields.String()
    name = ma.fields.String(allow_none=True)
    number_id = ma.fields.UUID(allow_none=True)
    content = ma.fields.Dict(allow_none=True, metadata={"description": "The Graph template object this recipient gets"})
    text = ma.fields.String(allow_none=True, metadata={"description": "The body as the recipient reads it"})
    problem = ma.fields.String(allow_none=True, metadata={"description": "Why this recipient cannot get it"})


class RecipientArgsSchema(PageQueryArgsSchema):
    status = ma.fields.String(load_default=None, metadata={
        "description": "pending, skipped, queued, retry, sending, sent, delivered, read, failed or unknown"})


class RecipientSchema(ma.Schema):
    id = ma.fields.UUID()
    contact_id = ma.fields.UUID()
    phone = ma.fields.String(attribute="phone_e164", allow_none=True)
    number_id = ma.fields.UUID(allow_none=True)
    status = ma.fields.String()
    reason = ma.fields.String(allow_none=True, metadata={"description": "Why it was skipped"})
    attempts = ma.fields.Integer()
    next_attempt_at = ma.fields.AwareDateTime(allow_none=True)
    message_id = ma.fields.UUID(allow_none=True)
    wamid = ma.fields.String(allow_none=True)
    sent_at = ma.fields.AwareDateTime(allow_none=True)
    delivered_at = ma.fields.AwareDateTime(allow_none=True)
    read_at = ma.fields.AwareDateTime(allow_none=True)
    failed_at = ma.fields.AwareDateTime(allow_none=True)
    error_code = ma.fields.String(allow_none=True)
    error_message = ma.fields.String(allow_none=True)
    replied_at = ma.fields.AwareDateTime(allow_none=True)
    clicked = ma.fields.String(allow_none=True, metadata={"description": "The quick-reply payload pressed"})


class RecipientPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(RecipientSchema))
    next_cursor = ma.fields.String(allow_none=True)


class PreflightSchema(ma.Schema):
    campaign_id = ma.fields.UUID()
    blocking = ma.fields.Boolean(metadata={"description": "True: start is refused until the problems are fixed"})
    problems = ma.fields.List(ma.fields.Dict(), metadata={"description": "Each {code, message, ...}: they block"})
    warnings = ma.fields.List(ma.fields.Dict(), metadata={"description": "Worth knowing; they do not block"})
    recipients = ma.fields.Dict(metadata={"example": {"total": 1200, "eligible": 1000, "suppressed": 200,
                                                      "suppressed_by_reason": {"no_opt_in": 150, "opted_out": 50}}})
    per_number = ma.fields.Dict(metadata={"description": "Eligible recipients per number id"})
    messaging_limit = ma.fields.Dict(metadata={"example": {"tier": "TIER_1K", "limit": 1000, "used_last_24h": 10,
                                                           "room": 990}})
    cost = ma.fields.Dict(metadata={"description": "Estimate in integer minor units, by category and market, "
                                                   "from the dated price table"})
    throughput_per_second = ma.fields.Float()
    eta_seconds = ma.fields.Integer(allow_none=True)
    checked_at = ma.fields.String()


class ProgressSchema(ma.Schema):
    status = ma.fields.String()
    pause_reason = ma.fields.String(allow_none=True)
    pause_message = ma.fields.String(allow_none=True)
    recipients = ma.fields.Integer()
    pending = ma.fields.Integer()
    in_flight = ma.fields.Integer()
    skipped = ma.fields.Integer()
    waiting_retry = ma.fields.Integer()
    done = ma.fields.Integer()
    percent = ma.fields.Float()
    messages_per_second = ma.fields.Float(allow_none=True)
    eta_seconds = ma.fields.Integer(allow_none=True)
    started_at = ma.fields.AwareDateTime(allow_none=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)
    audience_resolved = ma.fields.Boolean()


class FunnelSchema(ma.Schema):
    recipients = ma.fields.Integer()
    pending = ma.fields.Integer()
    queued = ma.fields.Integer()
    skipped = ma.fields.Integer()
    sent = ma.fields.Integer()
    delivered = ma.fields.Integer()
    read = ma.fields.Integer()
    replied = ma.fields.Integer()
    clicked = ma.fields.Integer()
    failed = ma.fields.Integer()
    unknown = ma.fields.Integer()
    waiting_retry = ma.fields.Integer()
    skipped_by_reason = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    failed_by_code = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    clicks_by_payload = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())
    rates = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Float(allow_none=True),
                           metadata={"description": "delivered, read, replied and clicked over sent"})
