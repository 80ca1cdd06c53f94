import marshmallow as ma

from web.schemas.common import StrictSchema

NOT_CONFIGURED = {"configured": False, "base_url": None, "model": None, "is_enabled": False, "has_api_key": False,
                  "api_key_hint": None, "updated_at": None}


class AiSettingsSchema(ma.Schema):
    """The API key is write-only: once stored, `has_api_key` and the hint (its last four characters) are all that
    is shown of it."""

    configured = ma.fields.Boolean(metadata={"description": "False until an admin saves settings"})
    base_url = ma.fields.String(allow_none=True, metadata={"example": "https://api.openai.com/v1"})
    model = ma.fields.String(allow_none=True, metadata={"example": "gpt-4o-mini"})
    is_enabled = ma.fields.Boolean()
    has_api_key = ma.fields.Boolean()
    api_key_hint = ma.fields.String(allow_none=True, metadata={"example": "…abcd"})
    updated_at = ma.fields.AwareDateTime(allow_none=True)

    @ma.pre_dump
    def _view(self, settings, **kwargs):
        if settings is None:
            return NOT_CONFIGURED
        return {"configured": True, "base_url": settings.base_url, "model": settings.model,
                "is_enabled": settings.is_enabled, "has_api_key": bool(settings.api_key_encrypted),
                "api_key_hint": f"…{settings.api_key_hint}", "updated_at": settings.updated_at}


class AiSettingsUpdateSchema(StrictSchema):
    base_url = ma.fields.Url(required=True, schemes={"http", "https"}, require_tld=False,
                             validate=ma.validate.Length(max=500), metadata={
                                 "description": "Where /chat/completions is: a public address, or one "
                                                "OUTBOUND_ALLOWED_HOSTS allows"})
    model = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    api_key = ma.fields.String(load_only=True, validate=ma.validate.Length(min=8, max=1000), metadata={
        "description": "Required on the first save; left out, the stored key stays"})
    is_enabled = ma.fields.Boolean(metadata={"description": "Left out: unchanged (a first save is enabled)"})
