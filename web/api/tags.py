"""Tags and how many contacts carry each."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import tags
from web.auth import require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.contacts import TagCreateSchema, TagSchema, TagUpdateSchema

blp = Blueprint("tags", __name__, description="Contact tags")


def _with_count(tag, count=0):
    return {"id": tag.id, "name": tag.name, "color": tag.color, "contact_count": count, "created_at": tag.created_at}


@blp.route("/", strict_slashes=False)
class TagList(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, TagSchema(many=True))
    def get(self):
        """Every tag with its number of (live) contacts."""
        return [_with_count(tag, count) for tag, count in tags.list_tags_with_counts(get_session(), org_id=require_org_id())]

    @requires(Permission.contacts_write)
    @blp.arguments(TagCreateSchema)
    @blp.response(201, TagSchema)
    def post(self, body):
        """Create a tag (tags are also created on the fly when contacts are tagged)."""
        return _with_count(tags.create_tag(get_session(), org_id=require_org_id(), **body))


@blp.route("/<tag_id>")
class TagItem(MethodView):
    @requires(Permission.contacts_write)
    @blp.arguments(TagUpdateSchema)
    @blp.response(200, TagSchema)
    def patch(self, body, tag_id):
        """Rename or recolour a tag; its contacts keep it."""
        session = get_session()
        tag = tags.update_tag(session, tag=tags.get_tag(session, org_id=require_org_id(), tag_id=tag_id), changes=body)
        counts = dict((t.id, n) for t, n in tags.list_tags_with_counts(session, org_id=require_org_id()))
        return _with_count(tag, counts.get(tag.id, 0))

    @requires(Permission.contacts_write)
    @blp.response(204)
    def delete(self, tag_id):
        """Delete a tag; it is removed from every contact."""
        session = get_session()
        tags.delete_tag(session, tag=tags.get_tag(session, org_id=require_org_id(), tag_id=tag_id))
