"""GraphClient against a fake Graph API over real HTTP: request shapes, parsing, error mapping, timeouts."""

import os
import socket

import pytest
import requests

from shared.whatsapp import client as client_module
from shared.whatsapp.client import DEFAULT_API_VERSION, GraphClient, SendResult, get_session, reset_session
from shared.whatsapp.errors import (
    ErrorAction,
    GraphAPIError,
    GraphConnectionError,
    GraphMalformedResponseError,
    GraphTimeoutError,
    MediaUrlExpiredError,
)

from .conftest import API_VERSION, TOKEN, FakeGraph

PHONE_ID = "106540352242922"
WABA_ID = "102290129340398"
ACCEPTED = {
    "messaging_product": "whatsapp",
    "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
    "messages": [{"id": "wamid.HBgLMTY1MDU1NTEyMzQ", "message_status": "accepted"}],
}


def envelope(message_type, content, **extra):
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": message_type,
        message_type: content,
        **extra,
    }


def test_default_api_version_is_the_one_the_reference_pins():
    assert DEFAULT_API_VERSION == "v24.0"


def test_send_text_posts_the_envelope_with_bearer_token_and_parses_the_answer(fake_graph, graph_client):
    fake_graph.respond(json=ACCEPTED)
    result = graph_client.send_text(
        PHONE_ID,
        "+16505551234",
        "Hi https://x.y",
        preview_url=True,
        context_message_id="wamid.PREVIOUS",
        biz_opaque_callback_data="message:8b1c",
    )
    assert result == SendResult(wamid="wamid.HBgLMTY1MDU1NTEyMzQ", message_status="accepted", wa_id="16505551234")
    request = fake_graph.last
    assert (request.method, request.path) == ("POST", f"/{API_VERSION}/{PHONE_ID}/messages")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json == envelope(
        "text",
        {"body": "Hi https://x.y", "preview_url": True},
        context={"message_id": "wamid.PREVIOUS"},
        biz_opaque_callback_data="message:8b1c",
    )


def test_optional_envelope_fields_are_left_out_and_absent_answer_fields_are_none(fake_graph, graph_client):
    fake_graph.respond(json={"messages": [{"id": "wamid.X"}]})
    result = graph_client.send_text(PHONE_ID, "+16505551234", "Hi")
    assert result == SendResult(wamid="wamid.X", message_status=None, wa_id=None)
    assert fake_graph.last.json == envelope("text", {"body": "Hi"})


def test_send_template_matches_the_reference_shape(fake_graph, graph_client):
    components = [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "1037543291543636"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Pablo"}]},
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "STOP"}],
        },
    ]
    held = {"id": "wamid.T", "message_status": "held_for_quality_assessment"}
    fake_graph.respond(json={**ACCEPTED, "messages": [held]})
    result = graph_client.send_template(
        PHONE_ID, "+16505551234", "order_update", "en_US", components, biz_opaque_callback_data="campaign:42;row:9"
    )
    assert result.message_status == "held_for_quality_assessment"
    assert fake_graph.last.json == envelope(
        "template",
        {"name": "order_update", "language": {"code": "en_US"}, "components": components},
        biz_opaque_callback_data="campaign:42;row:9",
    )


def test_send_media_by_id_and_by_link(fake_graph, graph_client):
    fake_graph.respond(json=ACCEPTED)
    fake_graph.respond(json=ACCEPTED)
    graph_client.send_media(PHONE_ID, "+16505551234", "document", media_id="55", caption="Invoice", filename="inv.pdf")
    assert fake_graph.last.json == envelope("document", {"id": "55", "caption": "Invoice", "filename": "inv.pdf"})
    graph_client.send_media(PHONE_ID, "+16505551234", "image", link="https://cdn.example/a.jpg")
    assert fake_graph.last.json == envelope("image", {"link": "https://cdn.example/a.jpg"})


def test_send_interactive_buttons_and_list(fake_graph, graph_client):
    fake_graph.respond(json=ACCEPTED)
    fake_graph.respond(json=ACCEPTED)
    graph_client.send_interactive_buttons(
        PHONE_ID,
        "+16505551234",
        "Reschedule?",
        [("resched_yes", "Yes"), ("resched_no", "No")],
        header="Delivery",
        footer="Acme",
    )
    assert fake_graph.last.json == envelope(
        "interactive",
        {
            "type": "button",
            "header": {"type": "text", "text": "Delivery"},
            "body": {"text": "Reschedule?"},
            "footer": {"text": "Acme"},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": "resched_yes", "title": "Yes"}},
                    {"type": "reply", "reply": {"id": "resched_no", "title": "No"}},
                ]
            },
        },
    )
    sections = [{"title": "Mon", "rows": [{"id": "mon_9", "title": "09:00", "description": "Morning"}]}]
    graph_client.send_interactive_list(PHONE_ID, "+16505551234", "Pick a slot", "Slots", sections)
    assert fake_graph.last.json == envelope(
        "interactive",
        {"type": "list", "body": {"text": "Pick a slot"}, "action": {"button": "Slots", "sections": sections}},
    )


def test_send_reaction_location_and_contacts(fake_graph, graph_client):
    for _ in range(3):
        fake_graph.respond(json=ACCEPTED)
    graph_client.send_reaction(PHONE_ID, "+16505551234", "wamid.X", "")
    assert fake_graph.last.json == envelope("reaction", {"message_id": "wamid.X", "emoji": ""})
    graph_client.send_location(PHONE_ID, "+16505551234", 37.48, -122.14, name="HQ", address="1 Hacker Way")
    assert fake_graph.last.json == envelope(
        "location", {"latitude": 37.48, "longitude": -122.14, "name": "HQ", "address": "1 Hacker Way"}
    )
    card = {
        "name": {"formatted_name": "Ana Diaz", "first_name": "Ana"},
        "phones": [{"phone": "+34611223344", "type": "CELL", "wa_id": "34611223344"}],
    }
    graph_client.send_contacts(PHONE_ID, "+16505551234", [card], context_message_id="wamid.Q")
    assert fake_graph.last.json == envelope("contacts", [card], context={"message_id": "wamid.Q"})


def test_mark_as_read_with_typing_indicator(fake_graph, graph_client):
    fake_graph.respond(json={"success": True})
    assert graph_client.mark_as_read(PHONE_ID, "wamid.IN", typing_indicator=True) is True
    assert fake_graph.last.path == f"/{API_VERSION}/{PHONE_ID}/messages"
    assert fake_graph.last.json == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN",
        "typing_indicator": {"type": "text"},
    }


def test_invalid_message_fails_before_any_request(fake_graph, graph_client):
    with pytest.raises(ValueError):
        graph_client.send_interactive_buttons(PHONE_ID, "+1", "Pick", [("a", "A"), ("b", "B"), ("c", "C"), ("d", "D")])
    with pytest.raises(ValueError):
        graph_client.send_text(PHONE_ID, "+1", "Hi", biz_opaque_callback_data="x" * 513)
    assert fake_graph.requests == []


def test_upload_media_sends_multipart(fake_graph, graph_client):
    fake_graph.respond(json={"id": "1037543291543636"})
    media_id = graph_client.upload_media(PHONE_ID, b"%PDF-1.7 ...", "application/pdf", "invoice.pdf")
    assert media_id == "1037543291543636"
    request = fake_graph.last
    assert (request.method, request.path) == ("POST", f"/{API_VERSION}/{PHONE_ID}/media")
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.form == {"messaging_product": "whatsapp", "type": "application/pdf"}
    assert request.files == {"file": ("invoice.pdf", b"%PDF-1.7 ...", "application/pdf")}


def test_get_media_url_then_download_with_the_token(fake_graph, graph_client):
    download_url = f"{fake_graph.base_url}/lookaside/media?mid=1&ext=99"
    fake_graph.respond(
        json={
            "messaging_product": "whatsapp",
            "url": download_url,
            "mime_type": "image/jpeg",
            "sha256": "abc",
            "file_size": "3",
            "id": "777",
        }
    )
    info = graph_client.get_media_url("777", phone_number_id=PHONE_ID)
    assert (info.id, info.url, info.mime_type, info.sha256, info.file_size) == (
        "777", download_url, "image/jpeg", "abc", 3,
    )  # fmt: skip
    assert fake_graph.last.path == f"/{API_VERSION}/777"
    assert fake_graph.last.query == {"phone_number_id": PHONE_ID}

    fake_graph.respond(body=b"\xff\xd8\xff", headers={"Content-Type": "image/jpeg"})
    assert graph_client.download_media(info.url) == b"\xff\xd8\xff"
    assert fake_graph.last.path == "/lookaside/media"
    assert fake_graph.last.query == {"mid": "1", "ext": "99"}
    assert fake_graph.last.headers["Authorization"] == f"Bearer {TOKEN}"


def test_an_expired_download_url_says_so(fake_graph, graph_client):
    fake_graph.respond(status=404, body=b"Not Found")
    with pytest.raises(MediaUrlExpiredError) as caught:
        graph_client.download_media(f"{fake_graph.base_url}/lookaside/media?mid=1")
    assert caught.value.http_status == 404


def test_list_templates_pages_until_next_is_gone(fake_graph, graph_client):
    fake_graph.respond(
        json={
            "data": [{"name": "order_update", "language": "en_US", "status": "APPROVED"}],
            "paging": {"cursors": {"before": "B1", "after": "A1"}, "next": "https://graph.facebook.com/..."},
        }
    )
    page = graph_client.list_templates(WABA_ID, status="APPROVED", name="order_update")
    assert page.templates == [{"name": "order_update", "language": "en_US", "status": "APPROVED"}]
    assert page.next_after == "A1"
    assert fake_graph.last.path == f"/{API_VERSION}/{WABA_ID}/message_templates"
    assert fake_graph.last.query == {
        "fields": "id,name,language,status,category,components,quality_score",
        "limit": "100",
        "status": "APPROVED",
        "name": "order_update",
    }
    fake_graph.respond(json={"data": [], "paging": {"cursors": {"before": "B2", "after": "A2"}}})
    last_page = graph_client.list_templates(WABA_ID, after=page.next_after)
    assert fake_graph.last.query["after"] == "A1"
    assert last_page.next_after is None


def test_create_and_delete_template(fake_graph, graph_client):
    payload = {
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hi {{1}}", "example": {"body_text": [["Pablo"]]}}],
    }
    fake_graph.respond(json={"id": "594425479261596", "status": "PENDING", "category": "UTILITY"})
    assert graph_client.create_template(WABA_ID, payload) == {
        "id": "594425479261596", "status": "PENDING", "category": "UTILITY",
    }  # fmt: skip
    assert (fake_graph.last.method, fake_graph.last.json) == ("POST", payload)

    fake_graph.respond(json={"success": True})
    assert graph_client.delete_template(WABA_ID, "order_update", hsm_id="594425479261596") is True
    assert fake_graph.last.method == "DELETE"
    assert fake_graph.last.path == f"/{API_VERSION}/{WABA_ID}/message_templates"
    assert fake_graph.last.query == {"name": "order_update", "hsm_id": "594425479261596"}


def test_get_phone_number_asks_for_the_fields(fake_graph, graph_client):
    answer = {"display_phone_number": "15550783881", "quality_rating": "GREEN", "id": PHONE_ID}
    fake_graph.respond(json=answer)
    assert graph_client.get_phone_number(PHONE_ID, ["display_phone_number", "quality_rating"]) == answer
    assert (fake_graph.last.method, fake_graph.last.path) == ("GET", f"/{API_VERSION}/{PHONE_ID}")
    assert fake_graph.last.query == {"fields": "display_phone_number,quality_rating"}


@pytest.mark.parametrize(
    ("status", "error", "action"),
    [
        (429, {"code": 130429, "error_subcode": 2494055, "error_data": {"details": "busy"}}, ErrorAction.RETRY_AFTER),
        (400, {"code": 131047, "error_data": {"details": "Re-engagement message"}}, ErrorAction.NEEDS_TEMPLATE),
        (400, {"code": 131056}, ErrorAction.PAIR_LIMITED),
        (401, {"code": 190, "error_subcode": 463}, ErrorAction.INVALID_TOKEN),
        (400, {"code": 131042}, ErrorAction.PAUSE_SENDER),
        (400, {"code": 131026}, ErrorAction.PERMANENT),
        (500, {"code": 131000}, ErrorAction.RETRY_BACKOFF),
    ],
)
def test_error_answers_become_classified_graph_api_errors(fake_graph, graph_client, status, error, action):
    fake_graph.respond(status=status, json={"error": {"message": "(#x) title", "fbtrace_id": "TRACE", **error}})
    with pytest.raises(GraphAPIError) as caught:
        graph_client.send_text(PHONE_ID, "+16505551234", "Hi")
    assert caught.value.http_status == status
    assert caught.value.code == error["code"]
    assert caught.value.subcode == error.get("error_subcode")
    assert caught.value.details == error.get("error_data", {}).get("details")
    assert caught.value.fbtrace_id == "TRACE"
    assert caught.value.action is action


def test_a_retry_after_header_sets_the_delay(fake_graph, graph_client):
    fake_graph.respond(status=429, json={"error": {"code": 130429}}, headers={"Retry-After": "7"})
    with pytest.raises(GraphAPIError) as caught:
        graph_client.send_text(PHONE_ID, "+16505551234", "Hi")
    assert caught.value.retry_after == 7.0


def test_a_non_json_gateway_error_is_transient(fake_graph, graph_client):
    fake_graph.respond(status=502, body=b"<html>Bad Gateway</html>")
    with pytest.raises(GraphAPIError) as caught:
        graph_client.get_phone_number(PHONE_ID)
    assert caught.value.code is None
    assert caught.value.action is ErrorAction.RETRY_BACKOFF


def test_the_client_never_retries_on_its_own(fake_graph, graph_client):
    fake_graph.respond(status=503, json={"error": {"code": 131016}})
    fake_graph.respond(json=ACCEPTED)
    with pytest.raises(GraphAPIError):
        graph_client.send_text(PHONE_ID, "+16505551234", "Hi")
    assert len(fake_graph.requests) == 1


def test_an_accepted_send_without_a_wamid_is_ambiguous(fake_graph, graph_client):
    fake_graph.respond(json={"messaging_product": "whatsapp"})
    with pytest.raises(GraphMalformedResponseError) as caught:
        graph_client.send_text(PHONE_ID, "+16505551234", "Hi")
    assert caught.value.ambiguous


def test_a_read_timeout_on_a_send_is_ambiguous_and_not_resent(fake_graph):
    slow = GraphClient(fake_graph.base_url, API_VERSION, TOKEN, connect_timeout=2, read_timeout=0.2)
    fake_graph.respond(json=ACCEPTED, delay=1.0)
    with pytest.raises(GraphTimeoutError) as caught:
        slow.send_text(PHONE_ID, "+16505551234", "Hi")
    assert caught.value.phase == "read"
    assert caught.value.request_sent and caught.value.ambiguous
    assert len(fake_graph.requests) == 1


def test_a_read_timeout_on_a_lookup_is_safe_to_retry(fake_graph):
    slow = GraphClient(fake_graph.base_url, API_VERSION, TOKEN, connect_timeout=2, read_timeout=0.2)
    fake_graph.respond(json={}, delay=1.0)
    with pytest.raises(GraphTimeoutError) as caught:
        slow.get_phone_number(PHONE_ID)
    assert caught.value.phase == "read" and caught.value.safe_to_retry


def test_a_refused_connection_never_sent_anything():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = GraphClient(f"http://127.0.0.1:{port}", API_VERSION, TOKEN, connect_timeout=1, read_timeout=1)
    with pytest.raises(GraphConnectionError) as caught:
        closed.send_text(PHONE_ID, "+16505551234", "Hi")
    assert caught.value.request_sent is False and caught.value.safe_to_retry


class RecordingAdapter(requests.adapters.BaseAdapter):
    """Stands in for the network: records what `requests` would send, answers or raises as told."""

    def __init__(self, raise_error=None):
        super().__init__()
        self.sent = []
        self.raise_error = raise_error

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append((request, timeout))
        if self.raise_error is not None:
            raise self.raise_error(request=request)
        response = requests.Response()
        response.status_code = 200
        response._content = b'{"messages":[{"id":"wamid.R"}]}'
        response.request, response.url = request, request.url
        return response

    def close(self):
        pass


def adapter_session(adapter):
    session = requests.Session()
    session.mount("https://", adapter)
    return session


def test_every_call_carries_explicit_connect_and_read_timeouts():
    adapter = RecordingAdapter()
    default = GraphClient("https://graph.facebook.com", "v24.0", TOKEN, session=adapter_session(adapter))
    tuned = GraphClient(
        "https://graph.facebook.com",
        "24.0",
        TOKEN,
        connect_timeout=1.5,
        read_timeout=40,
        session=adapter_session(adapter),
    )
    default.send_text(PHONE_ID, "+1", "Hi")
    tuned.send_text(PHONE_ID, "+1", "Hi")
    (first, first_timeout), (second, second_timeout) = adapter.sent
    assert first_timeout == (3.05, 15)
    assert second_timeout == (1.5, 40)
    assert first.url == second.url == f"https://graph.facebook.com/v24.0/{PHONE_ID}/messages"


def test_a_connect_timeout_is_safe_to_retry():
    adapter = RecordingAdapter(raise_error=requests.exceptions.ConnectTimeout)
    graph = GraphClient("https://graph.facebook.com", "v24.0", TOKEN, session=adapter_session(adapter))
    with pytest.raises(GraphTimeoutError) as caught:
        graph.send_text(PHONE_ID, "+1", "Hi")
    assert caught.value.phase == "connect"
    assert caught.value.request_sent is False and not caught.value.ambiguous


def test_ids_cannot_escape_their_path_segment():
    adapter = RecordingAdapter()
    graph = GraphClient("https://graph.facebook.com", "v24.0", TOKEN, session=adapter_session(adapter))
    graph.send_text("123/../456", "+1", "Hi")
    assert adapter.sent[0][0].url == "https://graph.facebook.com/v24.0/123%2F..%2F456/messages"


def test_the_token_never_shows_in_reprs_or_error_messages(fake_graph, graph_client):
    fake_graph.respond(status=400, json={"error": {"code": 100, "message": "(#100) Invalid parameter"}})
    with pytest.raises(GraphAPIError) as caught:
        graph_client.send_text(PHONE_ID, "+1", "Hi")
    slow = GraphClient(fake_graph.base_url, API_VERSION, TOKEN, read_timeout=0.2)
    fake_graph.respond(json=ACCEPTED, delay=1.0)
    with pytest.raises(GraphTimeoutError) as timed_out:
        slow.send_text(PHONE_ID, "+1", "Hi")
    for text in (repr(graph_client), str(caught.value), repr(caught.value), str(timed_out.value)):
        assert TOKEN not in text


def test_calls_share_one_keep_alive_connection(fake_graph, graph_client):
    fake_graph.respond(json=ACCEPTED)
    fake_graph.respond(json=ACCEPTED)
    other_client = GraphClient(fake_graph.base_url, API_VERSION, "another-tenant-token")
    graph_client.send_text(PHONE_ID, "+1", "Hi")
    other_client.send_text(PHONE_ID, "+1", "Hi")
    first, second = fake_graph.requests
    assert first.remote_port == second.remote_port  # same TCP connection, reused
    assert second.headers["Authorization"] == "Bearer another-tenant-token"


def test_reset_session_opens_fresh_connections(fake_graph, graph_client):
    fake_graph.respond(json=ACCEPTED)
    fake_graph.respond(json=ACCEPTED)
    graph_client.send_text(PHONE_ID, "+1", "Hi")
    before = get_session()
    reset_session()
    graph_client.send_text(PHONE_ID, "+1", "Hi")
    assert get_session() is not before
    assert fake_graph.requests[0].remote_port != fake_graph.requests[1].remote_port


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_inherit_the_parents_session():
    parent_session = get_session()
    pid = os.fork()
    if pid == 0:  # child: report through the exit code only
        try:
            os._exit(0 if client_module.get_session() is not parent_session else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert get_session() is parent_session


def test_constructor_rejects_bad_configuration():
    with pytest.raises(ValueError):
        GraphClient("graph.facebook.com", "v24.0", TOKEN)
    with pytest.raises(ValueError):
        GraphClient("https://graph.facebook.com", "v24.0", "")
    with pytest.raises(ValueError):
        GraphClient("https://graph.facebook.com", "v24.0", TOKEN, read_timeout=0)
