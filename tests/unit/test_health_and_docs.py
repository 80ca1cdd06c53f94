import socket

from web import create_app
from tests.conftest import reset_clients


def test_healthz_is_alive(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_reports_each_store(client):
    response = client.get("/readyz")
    body = response.get_json()
    assert response.status_code == 200, body
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "postgres": "ok",
        "redis": "ok",
        "mongodb": "ok",
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_readyz_is_503_and_names_the_store_that_is_down(migrated):
    broken = migrated.with_overrides(mongodb_url=f"mongodb://127.0.0.1:{_closed_port()}")
    reset_clients()
    try:
        response = create_app(broken).test_client().get("/readyz")
    finally:
        reset_clients()
        create_app(migrated)  # put the suite's settings back
    body = response.get_json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["mongodb"]["status"] == "down" and body["checks"]["mongodb"]["error"]
    assert body["checks"]["postgres"]["status"] == "ok"


def test_openapi_and_the_documentation_pages(client):
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/jobs/{job_id}" in spec["paths"]
    assert set(spec["components"]["schemas"]["Error"]["properties"]) == {"code", "message", "details", "request_id"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger-ui" in docs.data
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200  # served locally: works offline
    redoc = client.get("/redoc")
    assert redoc.status_code == 200 and b"/redoc/assets/redoc.standalone.js" in redoc.data and b"cdn." not in redoc.data
    script = client.get("/redoc/assets/redoc.standalone.js")  # served locally too: ReDoc is not blank offline
    assert script.status_code == 200 and b"Redoc" in script.data[:2000]


def test_the_spec_documents_401_403_404_and_409_where_they_happen(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    error = {"$ref": "#/components/schemas/Error"}

    def answers(path, method):
        return paths[path][method]["responses"]

    job = answers("/api/v1/jobs/{job_id}", "get")
    assert {"401", "403", "404"} <= set(job) and job["404"]["content"]["application/json"]["schema"] == error
    assert {"401", "403"} <= set(answers("/api/v1/contacts/", "get")) and "404" not in answers("/api/v1/contacts/", "get")
    assert "401" in answers("/api/v1/auth/me", "get") and "403" not in answers("/api/v1/auth/me", "get")
    for public in (("/api/v1/auth/login", "post"), ("/api/v1/webhooks/whatsapp", "post")):
        assert not {"401", "403"} & set(answers(*public))
    for conflict in (("/api/v1/contacts/", "post"), ("/api/v1/contacts/{contact_id}", "patch"),
                     ("/api/v1/numbers/", "post"), ("/api/v1/users/", "post"), ("/api/v1/auth/register", "post"),
                     ("/api/v1/departments/", "post"), ("/api/v1/jobs/{job_id}/cancel", "post"),
                     ("/api/v1/conversations/{conversation_id}/messages", "post")):
        assert "409" in answers(*conflict), conflict
