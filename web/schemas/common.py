"""Schemas every resource shares: the one error shape, pagination arguments."""

import marshmallow as ma


class ErrorSchema(ma.Schema):
    """The one JSON error shape every non-2xx response has."""

    code = ma.fields.String(
        required=True, metadata={"description": "Stable machine-readable error code", "example": "not_found"}
    )
    message = ma.fields.String(required=True, metadata={"description": "What went wrong, for a person"})
    details = ma.fields.Dict(
        required=True, metadata={"description": "Structured context: field errors, limits, allowed values"}
    )
    request_id = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "Echo of X-Request-ID; quote it when reporting"}
    )


class StrictSchema(ma.Schema):
    """Request bodies: unknown fields are an error, not silently dropped."""

    class Meta:
        unknown = ma.RAISE


class FiltersNamedOnce:
    """`filters` is the name everywhere a body selects contacts (segments, exports, bulk actions); `filter`,
    the older name of the last two, is still accepted."""

    @ma.pre_load
    def _older_name(self, data, **kwargs):
        if isinstance(data, dict) and "filter" in data:
            if "filters" in data:
                raise ma.ValidationError({"filter": ["Give filters (filter is its older name), not both."]})
            data = {("filters" if key == "filter" else key): value for key, value in data.items()}
        return data


class QueryArgsSchema(ma.Schema):
    """Query strings: unknown parameters are ignored."""

    class Meta:
        unknown = ma.EXCLUDE


class PageQueryArgsSchema(QueryArgsSchema):
    # Query values arrive as text, so a non-strict Integer is right here; JSON bodies use strict=True.
    limit = ma.fields.Integer(
        load_default=50, validate=ma.validate.Range(min=1, max=200), metadata={"example": 50}
    )
    cursor = ma.fields.String(
        load_default=None, metadata={"description": "`next_cursor` of the previous page"}
    )
