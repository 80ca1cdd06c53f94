"""Every error leaves in one shape: {code, message, details, request_id}."""

import pytest
from flask import Blueprint
from flask_smorest import abort
from sqlalchemy.exc import OperationalError

from shared.errors import ConflictError
from web import create_app

SHAPE = {"code", "message", "details", "request_id"}


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == SHAPE
    assert body["code"] == code
    assert body["message"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


@pytest.fixture
def probe_client(migrated, db_session, published):
    """The real app plus routes that raise what no foundation endpoint can raise yet (auth, throttling, bugs)."""
    app = create_app(migrated)
    probes = Blueprint("probes", __name__)
    probes.add_url_rule("/probe/401", "unauthorized", lambda: abort(401, message="Sign in first"))
    probes.add_url_rule("/probe/403", "forbidden", lambda: abort(403, message="Not allowed"))
    probes.add_url_rule(
        "/probe/429", "throttled", lambda: abort(429, message="Slow down", headers={"Retry-After": "30"})
    )
    probes.add_url_rule("/probe/409", "conflict", lambda: (_ for _ in ()).throw(ConflictError("taken")))

    def explode():
        raise RuntimeError("database password is hunter2")

    probes.add_url_rule("/probe/500", "explode", explode)

    def database_gone():
        raise OperationalError("SELECT 1", {}, Exception("connection to server at 10.0.0.5 failed: refused"))

    probes.add_url_rule("/probe/503", "database_gone", database_gone)
    app.register_blueprint(probes)
    return app.test_client()


def test_404_for_an_unknown_route(client):
    assert_error(client.get("/nowhere"), 404, "not_found")


def test_404_for_an_unknown_job(client, admin_headers):
    response = client.get("/api/v1/jobs/3f1b8f9e-0000-4000-8000-000000000000", headers=admin_headers)
    assert_error(response, 404, "job_not_found")


def test_405_names_the_allowed_methods(client):
    response = client.delete("/healthz")
    body = assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert body["details"]["allowed_methods"] == ["GET", "HEAD", "OPTIONS"]


def test_400_for_malformed_json(client, admin_headers):
    response = client.post(
        "/api/v1/jobs/3f1b8f9e-0000-4000-8000-000000000000/cancel",
        data="{not json",
        content_type="application/json",
        headers=admin_headers,
    )
    assert_error(response, 400, "bad_request")


def test_400_for_nan_or_infinity_which_are_not_json(client, admin_headers):
    # Python's parser takes them, PostgreSQL's jsonb does not: stored, they were a 500.
    for constant in ("NaN", "Infinity", "-Infinity"):
        response = client.post("/api/v1/chatbots", data='{"name": "Bot", "variables": {"x": %s}}' % constant,
                               content_type="application/json", headers=admin_headers)
        assert_error(response, 400, "bad_request")


def test_415_for_a_body_that_is_not_json(client, admin_headers):
    response = client.post(
        "/api/v1/jobs/3f1b8f9e-0000-4000-8000-000000000000/cancel",
        data="reason=x",
        content_type="text/plain",
        headers=admin_headers,
    )
    body = assert_error(response, 415, "unsupported_media_type")
    assert "application/json" in body["message"]


def test_413_for_a_body_over_the_limit(client, migrated):
    big = "x" * (migrated.max_request_bytes + 1)
    response = client.post(
        "/api/v1/jobs/3f1b8f9e-0000-4000-8000-000000000000/cancel",
        data='{"reason": "' + big + '"}',
        content_type="application/json",
    )
    assert_error(response, 413, "payload_too_large")


def test_422_lists_each_invalid_field(client, admin_headers):
    response = client.get("/api/v1/jobs?status=exploded&limit=0", headers=admin_headers)
    body = assert_error(response, 422, "validation_error")
    assert set(body["details"]["errors"]["query"]) == {"status", "limit"}


def test_422_for_an_unknown_body_field(client, admin_headers):
    response = client.post(
        "/api/v1/jobs/3f1b8f9e-0000-4000-8000-000000000000/cancel", json={"reasn": "typo"}, headers=admin_headers
    )
    body = assert_error(response, 422, "validation_error")
    assert "reasn" in body["details"]["errors"]["json"]


def test_401_without_a_token(client):
    assert_error(client.get("/api/v1/jobs"), 401, "unauthorized")


def test_403_for_a_role_without_the_permission(client, db_session, organization, login):
    from tests.factories import make_user

    viewer = make_user(db_session, organization, role="viewer")
    response = client.post("/api/v1/users", json={}, headers=login(viewer))
    body = assert_error(response, 403, "permission_denied")
    assert body["details"] == {"required_permission": "users:manage", "role": "viewer"}


@pytest.mark.parametrize("status,code", [(401, "unauthorized"), (403, "forbidden"), (409, "conflict")])
def test_auth_and_conflict_errors(probe_client, status, code):
    assert_error(probe_client.get(f"/probe/{status}"), status, code)


def test_429_carries_retry_after(probe_client):
    response = probe_client.get("/probe/429")
    body = assert_error(response, 429, "rate_limited")
    assert response.headers["Retry-After"] == "30"
    assert body["details"]["retry_after_seconds"] == 30


def test_500_hides_the_internals(probe_client):
    response = probe_client.get("/probe/500")
    body = assert_error(response, 500, "internal_error")
    assert "hunter2" not in response.get_data(as_text=True)
    assert "request_id" in body["message"]


def test_503_with_retry_after_when_the_database_is_unreachable(probe_client):
    response = probe_client.get("/probe/503")
    body = assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == "5" and body["details"] == {"retry_after_seconds": 5}
    assert "10.0.0.5" not in response.get_data(as_text=True)


def test_x_request_id_is_echoed_or_generated(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert generated and " " not in generated


def test_422_for_a_nul_character_anywhere_in_the_input(client, admin_headers):
    # Found by the fuzzer: PostgreSQL's text cannot hold NUL, and each of these was a 500.
    login = client.post("/api/v1/auth/login", json={"email": "a\u0000@example.com", "password": "x"})
    assert assert_error(login, 422, "validation_error")["details"] == {"location": "json"}
    listed = client.get("/api/v1/jobs/?kind=contacts%00import", headers=admin_headers)
    assert assert_error(listed, 422, "validation_error")["details"] == {"location": "query"}
    segment = client.post("/api/v1/segments/", json={"name": "ok", "filters": {"tags_any": ["v\u0000ip"]}},
                          headers=admin_headers)
    assert_error(segment, 422, "validation_error")
    # A backslash and "u0000" typed as text are no NUL.
    typed = client.post("/api/v1/segments/", json={"name": "literally \\u0000", "filters": {"tags_any": ["vip"]}},
                        headers=admin_headers)
    assert typed.status_code == 201, typed.get_json()
