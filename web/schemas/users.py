import marshmallow as ma

from shared.models import Availability
from shared.permissions import Role
from web.schemas.common import QueryArgsSchema, StrictSchema

NAME = ma.validate.Length(min=1, max=200)


class DepartmentRefSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()


class UserSchema(ma.Schema):
    id = ma.fields.UUID()
    organization_id = ma.fields.UUID(allow_none=True)
    email = ma.fields.Email(metadata={"example": "agent@example.com"})
    full_name = ma.fields.String(metadata={"example": "Ana Souza"})
    role = ma.fields.Enum(Role, by_value=True)
    is_active = ma.fields.Boolean()
    deactivated_at = ma.fields.AwareDateTime(allow_none=True)
    availability = ma.fields.Enum(Availability, by_value=True)
    last_seen_at = ma.fields.AwareDateTime(allow_none=True)
    last_login_at = ma.fields.AwareDateTime(allow_none=True)
    max_open_conversations = ma.fields.Integer()
    avatar_url = ma.fields.String(allow_none=True)
    settings = ma.fields.Dict()
    departments = ma.fields.List(ma.fields.Nested(DepartmentRefSchema))
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class UserCreateSchema(StrictSchema):
    email = ma.fields.String(required=True, validate=ma.validate.Length(max=320), metadata={"example": "agent@example.com"})
    password = ma.fields.String(required=True, load_only=True, metadata={"example": "Password123!"})
    full_name = ma.fields.String(required=True, validate=NAME, metadata={"example": "Ana Souza"})
    role = ma.fields.Enum(Role, by_value=True, load_default=Role.agent)
    max_open_conversations = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=0, max=1000))
    avatar_url = ma.fields.URL(validate=ma.validate.Length(max=1000), allow_none=True)


class UserUpdateSchema(StrictSchema):
    email = ma.fields.String(validate=ma.validate.Length(max=320))
    full_name = ma.fields.String(validate=NAME)
    role = ma.fields.Enum(Role, by_value=True)
    availability = ma.fields.Enum(Availability, by_value=True)
    max_open_conversations = ma.fields.Integer(strict=True, validate=ma.validate.Range(min=0, max=1000))
    avatar_url = ma.fields.URL(validate=ma.validate.Length(max=1000), allow_none=True)
    settings = ma.fields.Dict()


class ProfileUpdateSchema(StrictSchema):
    """What a user may change about themself."""

    full_name = ma.fields.String(validate=NAME)
    availability = ma.fields.Enum(Availability, by_value=True)
    avatar_url = ma.fields.URL(validate=ma.validate.Length(max=1000), allow_none=True)
    settings = ma.fields.Dict(metadata={"description": "Personal preferences (notification sounds, signature, ...)"})


class PasswordChangeSchema(StrictSchema):
    current_password = ma.fields.String(required=True, load_only=True)
    new_password = ma.fields.String(required=True, load_only=True)


class UserQueryArgsSchema(QueryArgsSchema):
    role = ma.fields.Enum(Role, by_value=True)
    include_deactivated = ma.fields.Boolean(load_default=True)
