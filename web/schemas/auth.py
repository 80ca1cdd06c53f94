import marshmallow as ma

from web.schemas.common import StrictSchema
from web.schemas.organizations import OrganizationSchema
from web.schemas.users import UserSchema


class RegisterSchema(StrictSchema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(max=320), metadata={"example": "admin@example.com"})
    password = ma.fields.String(required=True, load_only=True, metadata={"example": "Password123!"})
    full_name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200), metadata={"example": "Admin User"})
    organization_name = ma.fields.String(
        validate=ma.validate.Length(min=1, max=200),
        metadata={"description": "Defaults to \"<full_name>'s organization\"", "example": "Acme Ltd"},
    )


class LoginSchema(StrictSchema):
    email = ma.fields.String(required=True, metadata={"example": "admin@example.com"})
    password = ma.fields.String(required=True, load_only=True, metadata={"example": "Password123!"})


class TokensSchema(ma.Schema):
    access_token = ma.fields.String(metadata={"description": "Send as `Authorization: Bearer <token>`; 15 minutes"})
    refresh_token = ma.fields.String(metadata={"description": "POST /auth/refresh with it; works once; 7 days"})
    token_type = ma.fields.String(metadata={"example": "Bearer"})
    expires_in = ma.fields.Integer(metadata={"description": "Access token lifetime in seconds"})


class SessionSchema(TokensSchema):
    user = ma.fields.Nested(UserSchema)
    organization = ma.fields.Nested(OrganizationSchema, allow_none=True)


class MeSchema(UserSchema):
    organization = ma.fields.Nested(OrganizationSchema, allow_none=True)
    permissions = ma.fields.List(ma.fields.String())
