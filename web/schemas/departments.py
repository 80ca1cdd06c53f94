import marshmallow as ma

from web.schemas.common import StrictSchema


class DepartmentSchema(ma.Schema):
    id = ma.fields.UUID()
    name = ma.fields.String(metadata={"example": "Sales"})
    description = ma.fields.String(allow_none=True)
    member_count = ma.fields.Method("_member_count")
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()

    def _member_count(self, department) -> int:
        return len(department.members)


class MemberSchema(ma.Schema):
    id = ma.fields.UUID()
    full_name = ma.fields.String()
    email = ma.fields.String()
    role = ma.fields.String(attribute="role.value")
    availability = ma.fields.String(attribute="availability.value")


class DepartmentDetailSchema(DepartmentSchema):
    members = ma.fields.List(ma.fields.Nested(MemberSchema))


class DepartmentCreateSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    description = ma.fields.String(validate=ma.validate.Length(max=500), allow_none=True)


class DepartmentUpdateSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    description = ma.fields.String(validate=ma.validate.Length(max=500), allow_none=True)
