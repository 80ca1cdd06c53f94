import marshmallow as ma

from shared.models.jobs import JobStatus
from web.schemas.common import PageQueryArgsSchema, StrictSchema


class JobSchema(ma.Schema):
    id = ma.fields.UUID(dump_only=True)
    kind = ma.fields.String(metadata={"example": "contacts.import"})
    status = ma.fields.Enum(JobStatus, by_value=True)
    progress = ma.fields.Integer(metadata={"description": "0 to 100"})
    progress_message = ma.fields.String(allow_none=True)
    result = ma.fields.Dict(allow_none=True)
    error_code = ma.fields.String(allow_none=True)
    error_message = ma.fields.String(allow_none=True)
    attempts = ma.fields.Integer()
    max_attempts = ma.fields.Integer()
    idempotency_key = ma.fields.String(allow_none=True)
    organization_id = ma.fields.UUID()
    created_by_id = ma.fields.UUID(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()
    started_at = ma.fields.AwareDateTime(allow_none=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True)


class JobPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(JobSchema))
    next_cursor = ma.fields.String(allow_none=True, metadata={"description": "Pass as `cursor` for the next page"})


class JobQueryArgsSchema(PageQueryArgsSchema):
    kind = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    status = ma.fields.Enum(JobStatus, by_value=True)


class JobCancelSchema(StrictSchema):
    reason = ma.fields.String(validate=ma.validate.Length(max=500), metadata={"description": "Why, for the record"})
