"""Users of an organization: org_admin manages them; everyone signed in can see colleagues."""

from flask.views import MethodView

from shared.errors import ConflictError, PermissionDeniedError
from shared.models import Organization
from shared.permissions import Permission, Role
from shared.services import users
from web.auth import current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.users import UserCreateSchema, UserQueryArgsSchema, UserSchema, UserUpdateSchema

blp = Blueprint("users", __name__, description="Users, roles, availability and deactivation")


def _user(user_id):
    return users.get_user(get_session(), user_id=user_id, org_id=require_org_id())


def _guard_role(role) -> None:
    if role == Role.super_admin and not current_principal().is_super_admin:
        raise PermissionDeniedError("Only platform staff grant super_admin")


def _guard_self(user, action: str) -> None:
    if user.id == current_principal().user.id:
        raise ConflictError(f"You cannot {action} your own account", details={"reason": "self_lockout"})


@blp.route("/", strict_slashes=False)
class UserList(MethodView):
    @requires(Permission.users_read)
    @blp.arguments(UserQueryArgsSchema, location="query")
    @blp.response(200, UserSchema(many=True))
    def get(self, args):
        """The organization's users; filter by role."""
        return users.list_users(get_session(), org_id=require_org_id(), **args)

    @requires(Permission.users_manage)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @blp.alt_response(409, description="`email_taken`: an account with this email exists")
    def post(self, body):
        """Add a user (within the plan's user limit)."""
        _guard_role(body["role"])
        org = get_session().get(Organization, require_org_id())
        return users.create_user(get_session(), org=org, actor_id=current_principal().user.id, **body)


@blp.route("/<user_id>")
class UserItem(MethodView):
    @requires(Permission.users_read)
    @blp.response(200, UserSchema)
    def get(self, user_id):
        """One user."""
        return _user(user_id)

    @requires(Permission.users_manage)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    def patch(self, body, user_id):
        """Change a user's profile, role, availability or capacity. A role change signs them out."""
        user = _user(user_id)
        if "role" in body:
            _guard_role(body["role"])
            if body["role"] != user.role:
                _guard_self(user, "change the role of")
        return users.update_user(get_session(), user=user, changes=body, actor_id=current_principal().user.id)

    @requires(Permission.users_manage)
    @blp.response(204)
    def delete(self, user_id):
        """Delete a user; their tokens stop working at once."""
        user = _user(user_id)
        _guard_self(user, "delete")
        users.delete_user(get_session(), user=user, actor_id=current_principal().user.id)


@blp.route("/<user_id>/deactivate")
class UserDeactivate(MethodView):
    @requires(Permission.users_manage)
    @blp.response(200, UserSchema)
    def post(self, user_id):
        """Deactivate: the user can no longer sign in and their tokens stop working at once."""
        user = _user(user_id)
        _guard_self(user, "deactivate")
        return users.deactivate_user(get_session(), user=user, actor_id=current_principal().user.id)


@blp.route("/<user_id>/activate")
class UserActivate(MethodView):
    @requires(Permission.users_manage)
    @blp.response(200, UserSchema)
    def post(self, user_id):
        """Let a deactivated user sign in again."""
        return users.activate_user(get_session(), user=_user(user_id), actor_id=current_principal().user.id)
