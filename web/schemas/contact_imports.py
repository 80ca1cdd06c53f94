import marshmallow as ma

from web.schemas.common import FiltersNamedOnce, StrictSchema
from web.schemas.contacts import ContactFilterSchema


class ImportUploadSchema(ma.Schema):
    file = ma.fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class ContactImportSchema(ma.Schema):
    id = ma.fields.UUID()
    filename = ma.fields.String()
    size_bytes = ma.fields.Integer()
    encoding = ma.fields.String(metadata={"example": "utf-8"})
    delimiter = ma.fields.String(metadata={"example": ","})
    headers = ma.fields.List(ma.fields.String())
    sample = ma.fields.List(ma.fields.List(ma.fields.String()), metadata={"description": "The first rows"})
    job_id = ma.fields.UUID(allow_none=True)
    report_available = ma.fields.Boolean()
    created_at = ma.fields.AwareDateTime()


class ImportMappingSchema(StrictSchema):
    columns = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        required=True,
        metadata={
            "description": "CSV column → phone (required), name, email, language, lifecycle_stage, tags, "
            "marketing_opt_in, or attribute:<key>. Unmapped columns are ignored.",
            "example": {"Telefone": "phone", "Nome": "name", "Etiquetas": "tags", "Aceita ofertas": "marketing_opt_in"},
        },
    )
    mode = ma.fields.String(
        load_default="skip_existing", validate=ma.validate.OneOf(["skip_existing", "update_existing"])
    )


class PreviewRowSchema(ma.Schema):
    row = ma.fields.Integer(metadata={"description": "Line number in the file (the header is line 1)"})
    action = ma.fields.String(metadata={"description": "create, update, skip or invalid"})
    phone = ma.fields.String(allow_none=True)
    reason = ma.fields.String(allow_none=True)


class ImportPreviewSchema(ma.Schema):
    rows = ma.fields.List(ma.fields.Nested(PreviewRowSchema))
    ignored_columns = ma.fields.List(ma.fields.String())


class JobAcceptedSchema(ma.Schema):
    job_id = ma.fields.UUID(metadata={"description": "Poll GET /api/v1/jobs/{job_id}"})
    status = ma.fields.String()


class ExportCreateSchema(FiltersNamedOnce, StrictSchema):
    filters = ma.fields.Nested(ContactFilterSchema, load_default=dict)
