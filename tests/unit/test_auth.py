"""Registration, sign-in, tokens, sign-out, throttling: what a user of the API sees."""

import datetime as dt
import time

import jwt
import pytest
from flask_jwt_extended import create_access_token

from shared import events
from shared.redis_client import get_redis
from shared.permissions import Role
from tests.factories import PASSWORD, make_user

REGISTER = {"email": "Admin@Example.com", "password": "Password123!", "full_name": "Admin User"}


def register(client, **overrides):
    return client.post("/api/v1/auth/register", json={**REGISTER, **overrides})


def sign_in(client, email="admin@example.com", password="Password123!"):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_register_login_me(client):
    created = register(client)
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["user"]["email"] == "admin@example.com"  # normalized
    assert body["user"]["role"] == "org_admin"
    org = body["organization"]
    assert org["name"] == "Admin User's organization" and org["subscription_status"] == "trialing"
    trial_days = dt.datetime.fromisoformat(org["trial_ends_at"]) - dt.datetime.fromisoformat(org["created_at"])
    assert round(trial_days / dt.timedelta(days=1)) == 14

    tokens = sign_in(client).get_json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 15 * 60
    me = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200
    assert me.get_json()["organization"]["id"] == org["id"]
    assert "users:manage" in me.get_json()["permissions"]


@pytest.mark.parametrize(
    "overrides,status,code",
    [
        ({"password": "short1"}, 422, "weak_password"),
        ({"password": "onlyletters"}, 422, "weak_password"),
        ({"email": "not-an-email"}, 422, "invalid_email"),
        ({"full_name": ""}, 422, "validation_error"),
        ({"role": "super_admin"}, 422, "validation_error"),
    ],
)
def test_register_refuses_bad_input_clearly(client, overrides, status, code):
    response = register(client, **overrides)
    assert (response.status_code, response.get_json()["code"]) == (status, code)


def test_weak_password_lists_what_is_missing(client):
    details = register(client, password="abcdefgh").get_json()["details"]
    assert details["requirements"] == ["at least one digit"]


def test_an_email_registers_once_whatever_its_case(client):
    assert register(client).status_code == 201
    again = register(client, email="ADMIN@example.com")
    assert (again.status_code, again.get_json()["code"]) == (409, "email_taken")


def test_wrong_password_and_unknown_email_get_the_same_answer(client):
    register(client)
    wrong = sign_in(client, password="Password999!")
    unknown = sign_in(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json()["code"] == unknown.get_json()["code"] == "invalid_credentials"


def test_an_expired_access_token_is_401(client, app, admin):
    with app.app_context():
        token = create_access_token(
            identity=str(admin.id), expires_delta=dt.timedelta(seconds=-1), additional_claims={"auth_time": time.time()}
        )
    response = client.get("/api/v1/auth/me", headers=bearer(token))
    assert (response.status_code, response.get_json()["code"]) == (401, "token_expired")


def test_a_refresh_token_is_not_an_access_token(client):
    register(client)
    tokens = sign_in(client).get_json()
    response = client.get("/api/v1/auth/me", headers=bearer(tokens["refresh_token"]))
    assert (response.status_code, response.get_json()["code"]) == (401, "token_invalid")
    wrong_way = client.post("/api/v1/auth/refresh", headers=bearer(tokens["access_token"]))
    assert wrong_way.status_code == 401


def _claims_of_a_real_token(client) -> dict:
    register(client)
    token = sign_in(client).get_json()["access_token"]
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.parametrize("forge", [
    lambda claims, key: jwt.encode(claims, "another-secret-of-enough-length-for-hs256", algorithm="HS256"),
    lambda claims, key: jwt.encode(claims, None, algorithm="none"),
    lambda claims, key: jwt.encode({k: v for k, v in claims.items() if k != "type"}, key, algorithm="HS256"),
    lambda claims, key: jwt.encode({k: v for k, v in claims.items() if k != "exp"}, key, algorithm="HS256"),
], ids=["another key", "alg none", "no type claim", "no expiry"])
def test_a_token_this_api_did_not_sign_or_that_lacks_a_claim_is_401(client, app, forge):
    claims = _claims_of_a_real_token(client)
    response = client.get("/api/v1/auth/me", headers=bearer(forge(claims, app.config["JWT_SECRET_KEY"])))
    assert (response.status_code, response.get_json()["code"]) == (401, "token_invalid")


@pytest.mark.parametrize("header,code", [("Basic dXNlcjpwYXNz", "unauthorized"), ("Bearer", "unauthorized"),
                                         ("Bearer one two", "token_invalid")])
def test_an_authorization_header_that_is_not_bearer_token_is_401(client, header, code):
    response = client.get("/api/v1/auth/me", headers={"Authorization": header})
    assert (response.status_code, response.get_json()["code"]) == (401, code)


def test_a_tampered_token_is_401(client):
    register(client)
    token = sign_in(client).get_json()["access_token"]
    header, payload, signature = token.split(".")
    forged = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    response = client.get("/api/v1/auth/me", headers=bearer(forged))
    assert (response.status_code, response.get_json()["code"]) == (401, "token_invalid")


def test_logout_ends_both_tokens(client):
    register(client)
    tokens = sign_in(client).get_json()
    assert client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(tokens["refresh_token"])).status_code == 401


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(client):
    register(client)
    first = sign_in(client).get_json()
    second = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"]))
    assert second.status_code == 200
    second = second.get_json()
    assert client.get("/api/v1/auth/me", headers=bearer(second["access_token"])).status_code == 200

    replay = client.post("/api/v1/auth/refresh", headers=bearer(first["refresh_token"]))
    assert (replay.status_code, replay.get_json()["code"]) == (401, "token_revoked")
    # the whole family is gone, the legitimate newer tokens included
    assert client.get("/api/v1/auth/me", headers=bearer(second["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=bearer(second["refresh_token"])).status_code == 401
    # a fresh sign-in starts a new family
    assert sign_in(client).status_code == 200


def test_a_deactivated_users_tokens_stop_working(client, db_session, organization, admin_headers, login):
    agent = make_user(db_session, organization, role="agent")
    agent_headers = login(agent)
    assert client.get("/api/v1/auth/me", headers=agent_headers).status_code == 200
    assert client.post(f"/api/v1/users/{agent.id}/deactivate", headers=admin_headers).status_code == 200
    response = client.get("/api/v1/auth/me", headers=agent_headers)
    assert (response.status_code, response.get_json()["code"]) == (401, "token_revoked")
    refused = sign_in(client, email=agent.email, password=PASSWORD)
    assert refused.status_code == 401


def test_changing_the_password_signs_out_existing_sessions(client):
    register(client)
    token = sign_in(client).get_json()["access_token"]
    changed = client.post(
        "/api/v1/auth/me/password",
        json={"current_password": "Password123!", "new_password": "NewPassword456!"},
        headers=bearer(token),
    )
    assert changed.status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(token)).status_code == 401
    assert sign_in(client, password="Password123!").status_code == 401
    assert sign_in(client, password="NewPassword456!").status_code == 200


def test_profile_update_and_availability(client):
    register(client)
    token = sign_in(client).get_json()["access_token"]
    response = client.patch(
        "/api/v1/auth/me", json={"availability": "online", "full_name": "Ada Admin"}, headers=bearer(token)
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["availability"] == "online" and body["full_name"] == "Ada Admin" and body["last_seen_at"]
    denied = client.patch("/api/v1/auth/me", json={"role": "super_admin"}, headers=bearer(token))
    assert denied.status_code == 422  # a user cannot promote themself


def test_login_is_throttled_per_email_with_retry_after_and_a_success_resets(client):
    register(client)
    for _ in range(5):
        assert sign_in(client, password="Wrong-password-1").status_code == 401
    throttled = sign_in(client)  # even the right password waits
    assert throttled.status_code == 429
    assert throttled.get_json()["code"] == "too_many_login_attempts"
    assert 0 < int(throttled.headers["Retry-After"]) <= 15 * 60

    get_redis().flushdb()  # the window passes
    for _ in range(4):
        sign_in(client, password="Wrong-password-1")
    assert sign_in(client).status_code == 200  # resets the count
    for _ in range(4):
        assert sign_in(client, password="Wrong-password-1").status_code == 401
    assert sign_in(client).status_code == 200


def test_login_is_throttled_per_client_address(client):
    for n in range(20):
        sign_in(client, email=f"guess{n}@example.com", password="Wrong-password-1")
    response = sign_in(client, email="another@example.com", password="Wrong-password-1")
    assert response.status_code == 429 and "Retry-After" in response.headers


def test_sign_ins_are_audited_with_who_and_from_where(client, migrated):
    register(client)
    user_id = sign_in(client).get_json()["user"]["id"]
    sign_in(client, password="Wrong-password-1")
    org_id = client.get(
        "/api/v1/auth/me", headers=bearer(sign_in(client).get_json()["access_token"])
    ).get_json()["organization_id"]
    trail = events.events_for(org_id=org_id, subject_type="user", subject_id=user_id)
    signed_in = [e for e in trail if e["event"] == "auth.signed_in"]
    assert len(signed_in) == 2
    assert signed_in[0]["actor"] == user_id and signed_in[0]["data"]["ip"] == "127.0.0.1"
    failed = events.get_database()[events.EVENTS].count_documents(
        {"event": "auth.sign_in_failed", "subject_id": "admin@example.com"}
    )
    assert failed >= 1


def test_the_first_superadmin_command(db_session, capsys, monkeypatch):
    from shared.cli import main

    monkeypatch.setenv("PYTAKE_SUPERADMIN_PASSWORD", "Sup3r-secret-pass")
    assert main(["create-superadmin", "--email", "Ops@Example.com"]) == 0
    assert "super_admin ops@example.com created" in capsys.readouterr().out
    assert main(["create-superadmin", "--email", "ops@example.com"]) == 1  # once
    from sqlalchemy import select

    from shared.models import User

    user = db_session.execute(select(User).where(User.email == "ops@example.com")).scalar_one()
    assert user.role == Role.super_admin and user.organization_id is None
