"""Sign-up, sign-in, token refresh and sign-out, and the signed-in user's own profile."""

from flask import request
from flask.views import MethodView

from shared.errors import InvalidCredentialsError
from shared.models import Organization, User
from shared.permissions import ROLE_PERMISSIONS
from shared.redis_client import get_redis
from shared.security import normalize_email
from shared.services import auth_sessions, users
from shared.settings import get_settings
from web.auth import AUTHENTICATED, REFRESH, current_principal, issue_tokens, public, requires, seconds_left
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.auth import LoginSchema, MeSchema, RegisterSchema, SessionSchema, TokensSchema
from web.schemas.users import PasswordChangeSchema, ProfileUpdateSchema

blp = Blueprint("auth", __name__, description="Registration, sessions and the signed-in user")


def _with_org(user: User) -> dict:
    org = get_session().get(Organization, user.organization_id) if user.organization_id else None
    return {"user": user, "organization": org}


@blp.route("/register")
class Register(MethodView):
    @public
    @blp.doc(security=[])
    @blp.arguments(RegisterSchema)
    @blp.response(201, SessionSchema)
    @blp.alt_response(409, description="`email_taken`: an account with this email exists")
    def post(self, body):
        """Create an account and a new organization (on a 14-day trial); you become its org_admin."""
        user, org = users.register(get_session(), **body)
        return {**issue_tokens(user), "user": user, "organization": org}


@blp.route("/login")
class Login(MethodView):
    @public
    @blp.doc(security=[])
    @blp.arguments(LoginSchema)
    @blp.response(200, SessionSchema)
    def post(self, body):
        """Exchange email and password for an access token (15 min) and a refresh token (7 days)."""
        redis, address = get_redis(), request.remote_addr
        try:
            email = normalize_email(body["email"])
        except Exception:
            email = body["email"].strip().lower()
        auth_sessions.check_login_allowed(redis, email=email, address=address)
        try:
            user = users.authenticate(get_session(), email=email, password=body["password"])
        except InvalidCredentialsError:
            auth_sessions.record_login_failure(redis, email=email, address=address)
            users.record_failed_sign_in(email=email)
            raise
        auth_sessions.reset_login_failures(redis, email=email, address=address)
        return {**issue_tokens(user), **_with_org(user)}


@blp.route("/refresh")
class Refresh(MethodView):
    @requires(REFRESH)
    @blp.response(200, TokensSchema)
    def post(self):
        """Trade a refresh token for a new pair. Each refresh token works once; reusing one signs out the family."""
        principal = current_principal()
        claims = principal.claims
        auth_sessions.use_refresh_token(get_redis(), jti=claims["jti"], family=claims["fam"], ttl_seconds=seconds_left(claims))
        return issue_tokens(principal.user, family=claims["fam"], auth_time=claims["auth_time"])


@blp.route("/logout")
class Logout(MethodView):
    @requires(AUTHENTICATED)
    @blp.response(204)
    def post(self):
        """Sign out: this access token and its refresh token stop working at once."""
        claims = current_principal().claims
        redis = get_redis()
        auth_sessions.block_token(redis, jti=claims["jti"], ttl_seconds=seconds_left(claims))
        refresh_lifetime = get_settings().refresh_token_expire_days * 86400
        auth_sessions.revoke_family(redis, family=claims["fam"], ttl_seconds=refresh_lifetime)


def _me_payload(user: User) -> dict:
    return {
        **{field: getattr(user, field) for field in MeSchema().fields if hasattr(user, field)},
        "organization": _with_org(user)["organization"],
        "permissions": sorted(p.value for p in ROLE_PERMISSIONS[user.role]),
    }


@blp.route("/me")
class Me(MethodView):
    @requires(AUTHENTICATED)
    @blp.response(200, MeSchema)
    def get(self):
        """Who you are: profile, organization and permissions."""
        return _me_payload(current_principal().user)

    @requires(AUTHENTICATED)
    @blp.arguments(ProfileUpdateSchema)
    @blp.response(200, MeSchema)
    def patch(self, body):
        """Update your name, avatar, availability (online / away / offline) or personal settings."""
        user = current_principal().user
        users.update_user(get_session(), user=user, changes=body, actor_id=user.id)
        return _me_payload(user)


@blp.route("/me/password")
class MyPassword(MethodView):
    @requires(AUTHENTICATED)
    @blp.arguments(PasswordChangeSchema)
    @blp.response(204)
    def post(self, body):
        """Change your password; every existing session, this one included, must sign in again."""
        users.change_password(get_session(), user=current_principal().user, **body)
