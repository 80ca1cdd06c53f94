"""Authentication and authorization for every request, decided before the view runs.

Each view declares what it needs with `@requires(Permission.x)`, `@requires(AUTHENTICATED)`
(any signed-in user), `@requires(REFRESH)` (a refresh token) or `@public`. A before-request
hook reads that declaration, verifies the bearer token (signature, expiry, type, revocation,
the user still active), checks the role's permission, and binds the acting organization
once for the request, so tenant queries are filtered in one place (shared/db.py).

super_admin acts on an organization explicitly with the `X-Organization-Id` header.
An undeclared endpoint under the API prefix is refused: forgetting a permission fails closed.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import jwt
from flask import Flask, current_app, g, request
from flask_jwt_extended import JWTManager, create_access_token, create_refresh_token
from flask_jwt_extended.config import config as jwt_config
from jwt import ExpiredSignatureError, PyJWTError

from shared.db import bind_organization, reset_organization
from shared.errors import (
    OrganizationRequiredError,
    OrganizationSuspendedError,
    PermissionDeniedError,
    TokenExpiredError,
    TokenInvalidError,
    TokenRevokedError,
    UnauthorizedError,
)
from shared.logs import bind_context
from shared.models import Organization, User
from shared.permissions import Permission, Role, has_permission
from shared.redis_client import get_redis
from shared.services import auth_sessions, users
from shared.services.organizations import get_organization
from shared.settings import get_settings
from web.db import get_session
from web.views import view_attribute

PUBLIC = "public"
AUTHENTICATED = "authenticated"
REFRESH = "refresh"
ORG_HEADER = "X-Organization-Id"
Requirement = Permission | str


def requires(requirement: Requirement) -> Callable:
    def mark(view: Callable) -> Callable:
        view.required_permission = requirement
        return view

    return mark


public = requires(PUBLIC)


@dataclass
class Principal:
    """Who is acting: checked from one small read; the user's and the organization's rows are loaded only
    by the requests that use them."""

    user_id: uuid.UUID
    role: Role
    org_id: uuid.UUID | None  # the organization this request acts on
    claims: dict
    _user: User | None = field(default=None, init=False, repr=False)
    _org: Organization | None = field(default=None, init=False, repr=False)

    @property
    def user(self) -> User:
        if self._user is None:
            self._user = get_session().get(User, self.user_id,
                                           execution_options={"all_tenants": True, "include_deleted": True})
        return self._user

    @property
    def org(self) -> Organization | None:
        """The acting organization's row (plan, default country, settings)."""
        if self._org is None and self.org_id is not None:
            self._org = get_session().get(Organization, self.org_id)
        return self._org

    @property
    def is_super_admin(self) -> bool:
        return self.role == Role.super_admin


def current_principal() -> Principal:
    return g.principal


def require_org_id() -> uuid.UUID:
    """The acting organization; super_admin must name one with X-Organization-Id."""
    org_id = g.principal.org_id
    if org_id is None:
        raise OrganizationRequiredError(
            f"Name the organization to act on with the {ORG_HEADER} header", details={"header": ORG_HEADER}
        )
    return org_id


def current_org() -> Organization:
    """The acting organization's row (plan, default country, settings)."""
    require_org_id()
    return g.principal.org


def endpoint_requirement(app: Flask, endpoint: str, method: str) -> Requirement | None:
    return view_attribute(app, endpoint, method, "required_permission")


# -- tokens ------------------------------------------------------------------------------


def issue_tokens(user: User, *, family: str | None = None, auth_time: float | None = None) -> dict:
    """A new access/refresh pair; a sign-in starts a family, a refresh continues it."""
    family = family or uuid.uuid4().hex
    claims = {
        "fam": family,
        "role": user.role.value,
        "org_id": str(user.organization_id) if user.organization_id else None,
        "auth_time": auth_time if auth_time is not None else time.time(),
    }
    identity = str(user.id)
    settings = get_settings()
    return {
        "access_token": create_access_token(identity=identity, additional_claims=claims),
        "refresh_token": create_refresh_token(identity=identity, additional_claims=claims),
        "token_type": "Bearer",
        "expires_in": settings.access_token_expire_minutes * 60,
    }


def seconds_left(claims: dict) -> int:
    return max(1, int(claims["exp"] - time.time()))


def _bearer_token() -> str:
    """The token of `Authorization: Bearer <token>` (the header flask-jwt-extended is configured with)."""
    for value in request.headers.get(jwt_config.header_name, "").split(","):
        scheme, _, token = value.strip().partition(" ")
        if scheme == jwt_config.header_type and token:
            if " " in token.strip():
                raise TokenInvalidError("The Authorization header is not `Bearer <token>`",
                                        details={"reason": "malformed header"})
            return token.strip()
    raise UnauthorizedError("Send a bearer token in the Authorization header")


def _verified_claims(refresh: bool) -> dict:
    """Signature, expiry (and nbf/iat) and the token type, with flask-jwt-extended's key and algorithms.

    One PyJWT decode: flask-jwt-extended's own verification decodes each token three times (twice
    unverified, to offer a key-loader callback this API does not use): 0.28 against 0.07 ms a request.
    """
    kind = "refresh" if refresh else "access"
    not_ours = f"The token is not {'a refresh' if refresh else 'an access'} token this API issued"
    try:
        claims = jwt.decode(_bearer_token(), jwt_config.decode_key, algorithms=jwt_config.decode_algorithms,
                            leeway=jwt_config.leeway,
                            options={"require": ["exp", "jti", "type", jwt_config.identity_claim_key]})
    except ExpiredSignatureError as exc:
        raise TokenExpiredError("The token has expired; refresh it or sign in again") from exc
    except PyJWTError as exc:
        raise TokenInvalidError(not_ours, details={"reason": str(exc)}) from exc
    if claims["type"] != kind:
        raise TokenInvalidError(not_ours, details={"reason": f"Only {kind} tokens are allowed"})
    return claims


def _token_standing(claims: dict) -> tuple[uuid.UUID, users.Standing]:
    """The token's user, still allowed in (every authenticated request runs this)."""
    try:
        user_id = uuid.UUID(claims["sub"])
    except (KeyError, ValueError) as exc:
        raise TokenInvalidError("The token names no user") from exc
    standing = users.standing(get_session(), user_id=user_id)
    if standing is None or not standing.is_active:
        raise TokenRevokedError("This account is deactivated or deleted")
    if claims.get("auth_time", 0) < standing.tokens_valid_after.timestamp():
        raise TokenRevokedError("The password, role or status changed since this sign-in; sign in again")
    if auth_sessions.is_revoked(get_redis(), jti=claims["jti"], family=claims.get("fam")):
        raise TokenRevokedError("This session was signed out")
    return user_id, standing


def _acting_org_id(standing: users.Standing, requirement: Requirement) -> uuid.UUID | None:
    if standing.role == Role.super_admin:
        header = request.headers.get(ORG_HEADER)
        if not header:
            return None
        return get_organization(get_session(), org_id=header).id
    if not standing.org_exists:
        raise TokenRevokedError("This organization no longer exists")
    # A suspended organization may still see who it is and sign out, nothing else.
    if standing.org_suspended and requirement not in (AUTHENTICATED, REFRESH):
        raise OrganizationSuspendedError("This organization is suspended; contact support")
    return standing.organization_id


def _authorize() -> None:
    if request.endpoint is None or request.method == "OPTIONS":
        return
    requirement = endpoint_requirement(current_app, request.endpoint, request.method)
    if requirement == PUBLIC:
        return
    if requirement is None:
        if request.path.startswith(get_settings().api_v1_prefix):
            raise PermissionDeniedError("This endpoint declares no permission and is closed")
        return
    claims = _verified_claims(refresh=requirement == REFRESH)
    user_id, standing = _token_standing(claims)
    if requirement not in (AUTHENTICATED, REFRESH) and not has_permission(standing.role, requirement):
        raise PermissionDeniedError(
            f"The {standing.role.value} role cannot do this",
            details={"required_permission": Permission(requirement).value, "role": standing.role.value},
        )
    org_id = _acting_org_id(standing, requirement)
    g.principal = Principal(user_id=user_id, role=standing.role, org_id=org_id, claims=claims)
    g.org_token = bind_organization(org_id)
    bind_context(user_id=user_id, org_id=org_id)


def _unbind(_exc: BaseException | None) -> None:
    token = g.pop("org_token", None)
    if token is not None:
        reset_organization(token)


def init_app(app: Flask) -> None:
    settings = get_settings()
    app.config.update(
        JWT_SECRET_KEY=settings.secret_key,
        JWT_ACCESS_TOKEN_EXPIRES=dt.timedelta(minutes=settings.access_token_expire_minutes),
        JWT_REFRESH_TOKEN_EXPIRES=dt.timedelta(days=settings.refresh_token_expire_days),
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ALGORITHM="HS256",
    )
    JWTManager(app)
    app.before_request(_authorize)
    app.teardown_request(_unbind)
