"""Segments: saved filters with a live count; later, campaign audiences."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import contacts, segments
from web.auth import require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.common import PageQueryArgsSchema
from web.schemas.contacts import ContactPageSchema, SegmentCreateSchema, SegmentSchema, SegmentUpdateSchema

blp = Blueprint("segments", __name__, description="Saved contact filters")


def _segment(segment_id):
    return segments.get_segment(get_session(), org_id=require_org_id(), segment_id=segment_id)


def _with_count(segment):
    count = contacts.count_contacts(get_session(), org_id=segment.organization_id, spec=segment.filters)
    return {**{f: getattr(segment, f) for f in ("id", "name", "description", "filters", "created_at", "updated_at")},
            "contact_count": count}


@blp.route("/", strict_slashes=False)
class SegmentList(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, SegmentSchema(many=True))
    def get(self):
        """Every segment with its live count."""
        return [_with_count(s) for s in segments.list_segments(get_session(), org_id=require_org_id())]

    @requires(Permission.contacts_write)
    @blp.arguments(SegmentCreateSchema)
    @blp.response(201, SegmentSchema)
    def post(self, body):
        """Save a filter under a name."""
        return _with_count(segments.create_segment(get_session(), org_id=require_org_id(), **body))


@blp.route("/<segment_id>")
class SegmentItem(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, SegmentSchema)
    def get(self, segment_id):
        """One segment with its live count."""
        return _with_count(_segment(segment_id))

    @requires(Permission.contacts_write)
    @blp.arguments(SegmentUpdateSchema)
    @blp.response(200, SegmentSchema)
    def patch(self, body, segment_id):
        """Rename or change the filter."""
        return _with_count(segments.update_segment(get_session(), segment=_segment(segment_id), changes=body))

    @requires(Permission.contacts_write)
    @blp.response(204)
    def delete(self, segment_id):
        """Delete a segment (its contacts are untouched)."""
        segments.delete_segment(get_session(), segment=_segment(segment_id))


@blp.route("/<segment_id>/contacts")
class SegmentContacts(MethodView):
    @requires(Permission.contacts_read)
    @blp.arguments(PageQueryArgsSchema, location="query")
    @blp.response(200, ContactPageSchema)
    def get(self, args, segment_id):
        """The segment's contacts right now, newest first."""
        segment = _segment(segment_id)
        page = contacts.list_contacts(
            get_session(), org_id=segment.organization_id, spec=segment.filters, limit=args["limit"], cursor=args["cursor"]
        )
        return {"items": page.items, "next_cursor": page.next_cursor}
