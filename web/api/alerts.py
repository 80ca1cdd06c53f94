"""Alerts: templates rejected or paused, quality downgraded, accounts restricted, numbers paused, errors Meta
reported with no message. For org admins (super_admin too): read, filter, acknowledge."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import alerts
from web.auth import current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.alerts import AlertPageSchema, AlertQueryArgsSchema, AlertSchema

blp = Blueprint("alerts", __name__, description="What needs an admin's eye, one open alert per cause")


@blp.route("/", strict_slashes=False)
class AlertList(MethodView):
    @requires(Permission.alerts_manage)
    @blp.arguments(AlertQueryArgsSchema, location="query")
    @blp.response(200, AlertPageSchema)
    def get(self, args):
        """Newest first; `acknowledged=false` lists the open ones."""
        items, next_cursor = alerts.list_alerts(get_session(), org_id=require_org_id(), kind=args.get("kind"),
                                                acknowledged=args.get("acknowledged"), limit=args["limit"],
                                                cursor=args["cursor"])
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/<alert_id>/acknowledge")
class AlertAcknowledge(MethodView):
    @requires(Permission.alerts_manage)
    @blp.response(200, AlertSchema)
    def post(self, alert_id):
        """Seen: the alert closes, and the same cause later opens a new one."""
        return alerts.acknowledge(get_session(), org_id=require_org_id(), alert_id=alert_id,
                                  user_id=current_principal().user_id)
