import marshmallow as ma

from shared.models import NumberStatus
from shared.models.base import utcnow
from shared.services import restrictions
from web.schemas.common import QueryArgsSchema, StrictSchema

DIGITS = ma.validate.Regexp(r"^\d{5,20}$", error="Digits only, as Meta shows it.")


class NumberSchema(ma.Schema):
    """Credentials are write-only: once stored they are never returned."""

    id = ma.fields.UUID()
    waba_id = ma.fields.String()
    phone_number_id = ma.fields.String()
    display_phone_number = ma.fields.String(metadata={"example": "15550001234"})
    verified_name = ma.fields.String(allow_none=True)
    quality_rating = ma.fields.String(metadata={"example": "GREEN"})
    messaging_limit_tier = ma.fields.String(allow_none=True, metadata={"example": "TIER_1K"})
    throughput_mps = ma.fields.Integer()
    status = ma.fields.Enum(NumberStatus, by_value=True)
    default_chatbot_id = ma.fields.UUID(allow_none=True)
    has_verify_token = ma.fields.Method("_has_verify_token")
    last_synced_at = ma.fields.AwareDateTime(allow_none=True)
    sends_paused_at = ma.fields.AwareDateTime(
        allow_none=True, metadata={"description": "Meta refused the token or account: sends wait until new credentials"})
    sends_paused_reason = ma.fields.String(allow_none=True)
    restriction_info = ma.fields.List(ma.fields.Dict(), allow_none=True, metadata={
        "description": "Meta's account restriction as it sent it (restriction_type, expiration)"})
    sends_held_until = ma.fields.AwareDateTime(allow_none=True, metadata={
        "description": "A restriction or a disabled account: every message waits until then"})
    templates_held_until = ma.fields.AwareDateTime(allow_none=True, metadata={
        "description": "Business-initiated messaging restricted: template messages wait until then"})
    sends_held_reason = ma.fields.Method("_sends_held_reason", allow_none=True,
                                         metadata={"description": "Why messages wait now, in plain words"})
    created_at = ma.fields.AwareDateTime()

    def _has_verify_token(self, number) -> bool:
        return number.verify_token_encrypted is not None

    def _sends_held_reason(self, number) -> str | None:
        return restrictions.held_reason(number, now=utcnow())


class NumberCreateSchema(StrictSchema):
    waba_id = ma.fields.String(required=True, validate=DIGITS)
    phone_number_id = ma.fields.String(required=True, validate=DIGITS)
    display_phone_number = ma.fields.String(required=True, validate=DIGITS)
    verified_name = ma.fields.String(validate=ma.validate.Length(max=200))
    throughput_mps = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=1000))
    access_token = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=10, max=1000))
    app_secret = ma.fields.String(required=True, load_only=True, validate=ma.validate.Length(min=8, max=200))
    verify_token = ma.fields.String(load_only=True, validate=ma.validate.Length(min=8, max=200))


class NumberUpdateSchema(StrictSchema):
    verified_name = ma.fields.String(validate=ma.validate.Length(max=200))
    throughput_mps = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=1, max=1000))
    default_chatbot_id = ma.fields.UUID(allow_none=True)
    access_token = ma.fields.String(load_only=True, validate=ma.validate.Length(min=10, max=1000))
    app_secret = ma.fields.String(load_only=True, validate=ma.validate.Length(min=8, max=200))
    verify_token = ma.fields.String(load_only=True, validate=ma.validate.Length(min=8, max=200))


class TemplateSchema(ma.Schema):
    id = ma.fields.UUID()
    waba_id = ma.fields.String()
    meta_template_id = ma.fields.String(allow_none=True)
    name = ma.fields.String()
    language = ma.fields.String()
    category = ma.fields.String()
    status = ma.fields.String(metadata={"description": "DRAFT until Meta has it; then PENDING, APPROVED, REJECTED..."})
    rejected_reason = ma.fields.String(allow_none=True)
    status_description = ma.fields.String(allow_none=True, metadata={
        "description": "Meta's words with a rejection, a pause or a disablement (recommendation, title, description)"})
    quality_score = ma.fields.String(allow_none=True)
    components = ma.fields.List(ma.fields.Dict())
    submit_error = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class TemplateCreatedSchema(TemplateSchema):
    job_id = ma.fields.UUID(metadata={"description": "The submission to Meta: poll /jobs/{id}"})


class TemplateCreateSchema(StrictSchema):
    number_id = ma.fields.UUID(required=True, metadata={"description": "Which number's WABA the template belongs to"})
    name = ma.fields.String(required=True, metadata={"example": "order_update"})
    language = ma.fields.String(required=True, metadata={"example": "en_US"})
    category = ma.fields.String(required=True, metadata={"example": "UTILITY"})
    components = ma.fields.List(ma.fields.Dict(), required=True, metadata={"example": [
        {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way.",
         "example": {"body_text": [["Ana", "#1042"]]}}]})


class TemplateQueryArgsSchema(QueryArgsSchema):
    status = ma.fields.String()
    category = ma.fields.String()
    language = ma.fields.String()
    name = ma.fields.String()


class TemplateSyncSchema(StrictSchema):
    number_id = ma.fields.UUID(required=True)


class RenderSchema(StrictSchema):
    variables = ma.fields.Dict(required=True, metadata={"example": {"body": ["Ana", "#1042"]}})


class RenderedSchema(ma.Schema):
    components = ma.fields.List(ma.fields.Dict())


class JobStartedSchema(ma.Schema):
    job_id = ma.fields.UUID()
    status = ma.fields.String()
