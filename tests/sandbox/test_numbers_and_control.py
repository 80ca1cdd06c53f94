"""GET /{phone_number_id}, the control API's bookkeeping (numbers, reset, logs), serving the sandbox,
and the rule that the sandbox imports nothing of the project."""

import ast
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from sandbox.app import create_app
from sandbox.server import run_in_thread
from tests.sandbox.helpers import (
    AUTH,
    NUMBER,
    PHONE_NUMBER_ID,
    VERSION,
    WABA_ID,
    WELCOME,
    customer_writes,
    error_of,
    send,
    text,
)

SANDBOX_DIR = Path(__file__).resolve().parents[2] / "sandbox"


def test_a_phone_number_describes_itself_like_meta(graph):
    graph.patch(f"/_sandbox/numbers/{PHONE_NUMBER_ID}", json={"messaging_limit_tier": "TIER_2K"})
    assert graph.get(f"/{VERSION}/{PHONE_NUMBER_ID}", headers=AUTH).get_json() == {
        "verified_name": "Lucky Shrub",
        "code_verification_status": "VERIFIED",
        "display_phone_number": "15550783881",
        "quality_rating": "GREEN",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
        "whatsapp_business_manager_messaging_limit": "TIER_2K",
        "name_status": "APPROVED",
        "status": "CONNECTED",
        "id": PHONE_NUMBER_ID,
    }


def test_fields_select_what_comes_back(graph):
    graph.patch(f"/_sandbox/numbers/{PHONE_NUMBER_ID}", json={"throughput_mps": 1000})
    response = graph.get(f"/{VERSION}/{PHONE_NUMBER_ID}", query_string={"fields": "throughput,health_status"},
                         headers=AUTH)
    body = response.get_json()
    assert list(body) == ["throughput", "health_status", "id"]
    assert body["throughput"] == {"level": "HIGH"} and body["health_status"]["can_send_message"] == "AVAILABLE"
    unknown = graph.get(f"/{VERSION}/{PHONE_NUMBER_ID}", query_string={"fields": "colour"}, headers=AUTH)
    assert error_of(unknown)["code"] == 100 and "colour" in error_of(unknown)["error_data"]["details"]


def test_a_waba_lists_its_numbers(graph):
    data = graph.get(f"/{VERSION}/{WABA_ID}/phone_numbers", headers=AUTH).get_json()["data"]
    assert [number["id"] for number in data] == [PHONE_NUMBER_ID]


def test_number_registration_is_validated(graph):
    missing = graph.post("/_sandbox/numbers", json={"phone_number_id": "1"})
    assert missing.status_code == 400 and "access_token" in missing.get_json()["error"]
    typo = graph.post("/_sandbox/numbers", json={**NUMBER, "throughput": 5})
    assert typo.status_code == 400 and "throughput" in typo.get_json()["error"]
    bad_rate = graph.patch(f"/_sandbox/numbers/{PHONE_NUMBER_ID}", json={"duplicate_rate": 3})
    assert bad_rate.status_code == 400
    assert graph.patch("/_sandbox/numbers/404", json={"duplicate_rate": 0.1}).status_code == 404


def test_requests_are_recorded_with_their_outcome(graph):
    send(graph, text())
    [call] = graph.get("/_sandbox/requests", query_string={"kind": "messages"}).get_json()["data"]
    assert call["object_id"] == PHONE_NUMBER_ID and call["status_code"] == 400 and call["error_code"] == 131047
    assert call["body"]["to"] == "16505551234"


def test_reset_returns_to_the_created_configuration(graph):
    graph.post("/_sandbox/numbers", json={**NUMBER, "phone_number_id": "777", "access_token": "t7"})
    graph.post("/_sandbox/templates", json=WELCOME)
    customer_writes(graph)
    send(graph, text())
    graph.patch("/_sandbox/faults", json={"latency_ms": 5})
    graph.post("/_sandbox/clock", json={"advance": 3600})

    assert graph.post("/_sandbox/reset").get_json() == {"reset": True}
    assert [n["phone_number_id"] for n in graph.get("/_sandbox/numbers").get_json()["data"]] == [PHONE_NUMBER_ID]
    for listing in ("messages", "requests", "webhooks", "inbound", "templates"):
        assert graph.get(f"/_sandbox/{listing}").get_json()["data"] == [], listing
    assert graph.get("/_sandbox/faults").get_json()["latency_ms"] == 0
    assert abs(graph.get("/_sandbox/clock").get_json()["now"] - time.time()) < 60
    assert error_of(send(graph, text()))["code"] == 131047  # the window closed with the reset


def test_create_app_can_start_with_numbers_templates_and_rejects_unknown_keys():
    app = create_app({"numbers": [NUMBER], "templates": [WELCOME]})
    try:
        client = app.test_client()
        response = send(client, {"to": "16505551234", "type": "template",
                                 "template": {"name": "welcome", "language": {"code": "en_US"}}})
        assert response.status_code == 200
    finally:
        app.extensions["sandbox"].close()
    try:
        create_app({"numbrs": []})
    except ValueError as exc:
        assert "numbrs" in str(exc)
    else:
        raise AssertionError("an unknown config key was accepted")


def test_unknown_graph_paths_answer_in_the_error_envelope(graph):
    response = graph.get(f"/{VERSION}/{PHONE_NUMBER_ID}/colours", headers=AUTH)
    assert response.status_code == 404 and error_of(response)["code"] == 100
    control = graph.get("/_sandbox/nothing")
    assert control.status_code == 404 and list(control.get_json()) == ["error"]


def test_run_in_thread_serves_real_http():
    base_url, stop = run_in_thread({"numbers": [NUMBER]})
    try:
        response = requests.post(f"{base_url}/{VERSION}/{PHONE_NUMBER_ID}/messages", headers=AUTH, timeout=5,
                                 json={"messaging_product": "whatsapp", "to": "16505551234", "text": {"body": "Hi"}})
        assert response.status_code == 400 and response.json()["error"]["code"] == 131047
    finally:
        stop()
    try:
        requests.get(f"{base_url}/_sandbox/clock", timeout=1)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the server still answers after stop()")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_python_dash_m_sandbox_starts_a_server():
    port = _free_port()
    process = subprocess.Popen([sys.executable, "-m", "sandbox", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=SANDBOX_DIR.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/_sandbox/clock", timeout=1).status_code == 200
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
                time.sleep(0.05)
    finally:
        process.terminate()
        process.wait(timeout=5)


ALLOWED_THIRD_PARTY = {"flask", "werkzeug", "requests", "sandbox"}


def foreign_imports(source: str) -> list[str]:
    """Modules imported by `source` that are neither stdlib nor allowed third-party packages."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found += [name for name in names
                  if name.split(".")[0] not in sys.stdlib_module_names | ALLOWED_THIRD_PARTY]
    return found


def test_the_sandbox_imports_only_stdlib_flask_werkzeug_and_requests():
    offenders = {path.name: foreign_imports(path.read_text()) for path in sorted(SANDBOX_DIR.rglob("*.py"))}
    assert len(offenders) >= 10
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_import_check_catches_project_imports():
    source = "import json\nfrom flask import Flask\nfrom shared.settings import x\ndef f():\n    import web.api\n"
    assert foreign_imports(source) == ["shared.settings", "web.api"]
