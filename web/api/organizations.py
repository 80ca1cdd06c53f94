"""Organizations: super_admin manages every tenant; an org_admin reads and updates its own."""

from flask.views import MethodView

from shared.errors import OrganizationNotFoundError, PermissionDeniedError
from shared.permissions import Permission
from shared.services import organizations, plans
from web.auth import current_principal, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.organizations import (
    OrganizationCreateSchema,
    OrganizationSchema,
    OrganizationUpdateSchema,
    SuspendSchema,
    UsageSchema,
)

blp = Blueprint("organizations", __name__, description="Tenants, their settings, plan and usage")
SUPER_ADMIN_FIELDS = {"plan_code", "trial_ends_at"}


def _visible_org(org_id):
    """Another tenant's organization answers 404, like any other row of theirs."""
    principal = current_principal()
    if not principal.is_super_admin and str(principal.user.organization_id) != str(org_id):
        raise OrganizationNotFoundError(f"organization {org_id} not found")
    return organizations.get_organization(get_session(), org_id=org_id)


@blp.route("/", strict_slashes=False)
class OrganizationList(MethodView):
    @requires(Permission.platform_manage)
    @blp.response(200, OrganizationSchema(many=True))
    def get(self):
        """Every organization on the platform (super_admin)."""
        return organizations.list_organizations(get_session())

    @requires(Permission.platform_manage)
    @blp.arguments(OrganizationCreateSchema)
    @blp.response(201, OrganizationSchema)
    def post(self, body):
        """Create an organization (super_admin); it starts a 14-day trial of its plan."""
        return organizations.create_organization(get_session(), actor_id=current_principal().user.id, **body)


@blp.route("/<org_id>")
class OrganizationItem(MethodView):
    @requires(Permission.org_read)
    @blp.response(200, OrganizationSchema)
    def get(self, org_id):
        """One organization: yours, or any for super_admin."""
        return _visible_org(org_id)

    @requires(Permission.org_manage)
    @blp.arguments(OrganizationUpdateSchema)
    @blp.response(200, OrganizationSchema)
    def patch(self, body, org_id):
        """Update name, time zone, default country, billing email, language or settings (plan and trial: super_admin)."""
        org = _visible_org(org_id)
        principal = current_principal()
        if SUPER_ADMIN_FIELDS & body.keys() and not principal.is_super_admin:
            raise PermissionDeniedError(
                "Only platform staff change the plan or the trial", details={"fields": sorted(SUPER_ADMIN_FIELDS & body.keys())}
            )
        return organizations.update_organization(get_session(), org_id=org.id, changes=body, actor_id=principal.user.id)

    @requires(Permission.platform_manage)
    @blp.response(204)
    def delete(self, org_id):
        """Soft-delete an organization (super_admin): its users can no longer sign in."""
        organizations.delete_organization(get_session(), org_id=org_id, actor_id=current_principal().user.id)


@blp.route("/<org_id>/suspend")
class OrganizationSuspend(MethodView):
    @requires(Permission.platform_manage)
    @blp.arguments(SuspendSchema, required=False)
    @blp.response(200, OrganizationSchema)
    def post(self, body, org_id):
        """Suspend an organization (super_admin): its users can sign in to see why, nothing more."""
        return organizations.suspend_organization(
            get_session(), org_id=org_id, reason=(body or {}).get("reason"), actor_id=current_principal().user.id
        )


@blp.route("/<org_id>/reactivate")
class OrganizationReactivate(MethodView):
    @requires(Permission.platform_manage)
    @blp.response(200, OrganizationSchema)
    def post(self, org_id):
        """Lift a suspension (super_admin)."""
        return organizations.reactivate_organization(get_session(), org_id=org_id, actor_id=current_principal().user.id)


@blp.route("/<org_id>/usage")
class OrganizationUsage(MethodView):
    @requires(Permission.org_read)
    @blp.response(200, UsageSchema)
    def get(self, org_id):
        """Users, WhatsApp numbers, contacts and messages this month against the plan's limits."""
        org = _visible_org(org_id)
        resources = plans.usage(get_session(), org=org)
        return {
            "organization_id": org.id,
            "plan": org.plan,
            "period_start": plans.month_start(),
            "resources": {
                name: {"used": u.used, "limit": u.limit, "remaining": u.remaining, "counted": u.counted}
                for name, u in resources.items()
            },
        }
