"""Custom attribute definitions: the typed fields contacts carry."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import attributes
from web.auth import require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.contacts import AttributeDefinitionCreateSchema, AttributeDefinitionSchema

blp = Blueprint("contact_attributes", __name__, description="Typed custom attributes of contacts")


@blp.route("/", strict_slashes=False)
class AttributeList(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, AttributeDefinitionSchema(many=True))
    def get(self):
        """Every defined attribute and its type (text, number, date, boolean)."""
        return attributes.list_definitions(get_session(), org_id=require_org_id())

    @requires(Permission.org_manage)
    @blp.arguments(AttributeDefinitionCreateSchema)
    @blp.response(201, AttributeDefinitionSchema)
    def post(self, body):
        """Define an attribute; values are checked against its type on every write and import."""
        return attributes.create_definition(get_session(), org_id=require_org_id(), **body)


@blp.route("/<key>")
class AttributeItem(MethodView):
    @requires(Permission.org_manage)
    @blp.response(204)
    def delete(self, key):
        """Remove a definition (values already stored stay on the contacts)."""
        attributes.delete_definition(get_session(), org_id=require_org_id(), key=key)
