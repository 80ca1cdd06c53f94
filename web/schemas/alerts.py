"""Alerts: what needs an admin's eye."""

import marshmallow as ma

from web.schemas.common import PageQueryArgsSchema

KINDS = ("template_rejected", "template_paused", "template_disabled", "quality_downgraded", "account_restricted",
         "number_paused", "webhook_error", "campaign_paused", "campaign_failed")


class AlertSchema(ma.Schema):
    id = ma.fields.UUID()
    kind = ma.fields.String(metadata={"example": "template_rejected"})
    subject_type = ma.fields.String(metadata={"example": "template"})
    subject_id = ma.fields.String()
    message = ma.fields.String()
    data = ma.fields.Dict()
    occurrences = ma.fields.Integer(metadata={"description": "How often the cause came up while the alert was open"})
    created_at = ma.fields.AwareDateTime()
    last_seen_at = ma.fields.AwareDateTime()
    acknowledged_at = ma.fields.AwareDateTime(allow_none=True)
    acknowledged_by_id = ma.fields.UUID(allow_none=True)


class AlertPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AlertSchema))
    next_cursor = ma.fields.String(allow_none=True)


class AlertQueryArgsSchema(PageQueryArgsSchema):
    kind = ma.fields.String(validate=ma.validate.OneOf(KINDS))
    acknowledged = ma.fields.Boolean(metadata={"description": "false: the open ones; true: the acknowledged ones"})
