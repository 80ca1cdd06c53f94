"""Plans and their limits: read by anyone signed in, changed by platform staff without a deploy."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.services import plans
from web.auth import AUTHENTICATED, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.organizations import PlanSchema, PlanUpdateSchema

blp = Blueprint("plans", __name__, description="Commercial plans and their limits")


@blp.route("/", strict_slashes=False)
class PlanList(MethodView):
    @requires(AUTHENTICATED)
    @blp.response(200, PlanSchema(many=True))
    def get(self):
        """Every plan with its limits (null: unlimited)."""
        return plans.list_plans(get_session())


@blp.route("/<code>")
class PlanItem(MethodView):
    @requires(Permission.platform_manage)
    @blp.arguments(PlanUpdateSchema)
    @blp.response(200, PlanSchema)
    def patch(self, body, code):
        """Change a plan's name or limits (super_admin); applies to every organization on it at once."""
        return plans.update_plan(get_session(), code=code, changes=body)
