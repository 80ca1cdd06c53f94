import zoneinfo

import marshmallow as ma
import phonenumbers

from shared.languages import CONFIRMATION_SETTINGS, SUPPORTED_LANGUAGES
from shared.models import SubscriptionStatus
from shared.services import button_replies
from shared.whatsapp.outbound import MAX_TEXT_BODY_CHARS
from web.schemas.common import StrictSchema


def _valid_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ma.ValidationError("Not an IANA time zone (e.g. America/Sao_Paulo).")


def _valid_country(value: str) -> None:
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ma.ValidationError("Not an ISO 3166-1 alpha-2 country code with a phone numbering plan (e.g. BR).")


_LANGUAGE = {
    "validate": ma.validate.OneOf(SUPPORTED_LANGUAGES, error="Not a supported language; one of: {choices}."),
    "metadata": {"description": "What PyTake writes to customers in on its own (keyword confirmations)",
                 "example": "pt-BR"},
}


def _valid_settings(value: dict) -> None:
    """The keys PyTake reads as texts to send must be sendable texts; null or absent means the default."""
    errors = {}
    for key in CONFIRMATION_SETTINGS.values():
        text = value.get(key)
        if text is None:
            continue
        if not isinstance(text, str) or not text.strip():
            errors[key] = ["Give the text to send (or null for the language's default)."]
        elif len(text) > MAX_TEXT_BODY_CHARS:
            errors[key] = [f"At most {MAX_TEXT_BODY_CHARS} characters (a WhatsApp text message)."]
    actions = value.get(button_replies.SETTING)
    if actions is not None and (not isinstance(actions, dict) or not all(
            isinstance(payload, str) and payload and button_replies.is_action(action)
            for payload, action in actions.items())):
        errors[button_replies.SETTING] = [
            "Map each button payload to opt_out_marketing, opt_in_marketing, handoff or tag:<name>."]
    if errors:
        raise ma.ValidationError(errors)


class PlanSchema(ma.Schema):
    code = ma.fields.String(metadata={"example": "starter"})
    name = ma.fields.String()
    max_users = ma.fields.Integer(allow_none=True, metadata={"description": "null: unlimited"})
    max_whatsapp_numbers = ma.fields.Integer(allow_none=True)
    max_contacts = ma.fields.Integer(allow_none=True)
    max_monthly_messages = ma.fields.Integer(allow_none=True)


_LIMIT = {"strict": True, "allow_none": True, "validate": ma.validate.Range(min=0)}


class PlanUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    max_users = ma.fields.Integer(**_LIMIT)
    max_whatsapp_numbers = ma.fields.Integer(**_LIMIT)
    max_contacts = ma.fields.Integer(**_LIMIT)
    max_monthly_messages = ma.fields.Integer(**_LIMIT)


class OrganizationSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String(metadata={"example": "Acme Ltd"})
    plan_code = ma.fields.String(metadata={"example": "free"})
    subscription_status = ma.fields.Enum(SubscriptionStatus, by_value=True)
    trial_ends_at = ma.fields.AwareDateTime(allow_none=True)
    is_suspended = ma.fields.Boolean()
    suspended_at = ma.fields.AwareDateTime(allow_none=True)
    suspension_reason = ma.fields.String(allow_none=True)
    timezone = ma.fields.String(metadata={"example": "America/Sao_Paulo"})
    default_country = ma.fields.String(allow_none=True, metadata={"example": "BR"})
    billing_email = ma.fields.String(allow_none=True)
    language = ma.fields.String(metadata={"example": "pt-BR"})
    settings = ma.fields.Dict()
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class OrganizationUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=200))
    timezone = ma.fields.String(validate=_valid_timezone)
    default_country = ma.fields.String(validate=_valid_country, allow_none=True)
    billing_email = ma.fields.Email(allow_none=True, validate=ma.validate.Length(max=320))
    language = ma.fields.String(**_LANGUAGE)
    settings = ma.fields.Dict(
        metadata={"description": "opt_out_reply / opt_in_reply: the organization's own keyword confirmations "
                                 "(null: the language's default); opt_out_keywords / opt_in_keywords; "
                                 "button_payload_actions: {payload: opt_out_marketing | opt_in_marketing | handoff | "
                                 "tag:<name>} for templates' quick-reply buttons (default: STOP-like payloads opt "
                                 "out of marketing)"},
    )
    # super_admin only:
    plan_code = ma.fields.String(metadata={"description": "super_admin only; ends a trial"})
    trial_ends_at = ma.fields.AwareDateTime(metadata={"description": "super_admin only"})

    @ma.validates("settings")
    def _settings(self, value, **kwargs):  # here rather than validate=: the errors stay keyed by setting
        _valid_settings(value)


class OrganizationCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    plan_code = ma.fields.String(load_default="free")
    timezone = ma.fields.String(validate=_valid_timezone)
    default_country = ma.fields.String(validate=_valid_country, allow_none=True)
    billing_email = ma.fields.Email(allow_none=True)
    language = ma.fields.String(**_LANGUAGE)


class SuspendSchema(StrictSchema):
    reason = ma.fields.String(validate=ma.validate.Length(max=500))


class ResourceUsageSchema(ma.Schema):
    used = ma.fields.Integer()
    limit = ma.fields.Integer(allow_none=True, metadata={"description": "null: unlimited"})
    remaining = ma.fields.Integer(allow_none=True)
    counted = ma.fields.Boolean(metadata={"description": "false until the module owning the resource exists"})


class UsageSchema(ma.Schema):
    organization_id = ma.fields.UUID()
    plan = ma.fields.Nested(PlanSchema)
    period_start = ma.fields.AwareDateTime(metadata={"description": "Start of the month monthly counts cover (UTC)"})
    resources = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(ResourceUsageSchema))
