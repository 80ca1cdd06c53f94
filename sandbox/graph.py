"""The Graph API routes the sandbox plays: messages, media, templates and phone numbers.

Every call here goes through the fault knobs first and is recorded (`GET /_sandbox/requests`).
Tokens: a token no number holds is 190; an unknown id is 100/33; a known id with another number's
token is 190 again (the sandbox checks the bearer token per number).
"""

from __future__ import annotations

import base64
import json
import time

from flask import Blueprint, Response, g, jsonify, request

from sandbox import media, messages
from sandbox.errors import GraphError, invalid, unknown_object
from sandbox.runtime import Sandbox, current
from sandbox.state import UPLOADED_MEDIA_TTL, Number

blueprint = Blueprint("graph", __name__)

NUMBER_FIELDS_DEFAULT = (
    "verified_name",
    "code_verification_status",
    "display_phone_number",
    "quality_rating",
    "platform_type",
    "throughput",
    "whatsapp_business_manager_messaging_limit",
    "name_status",
    "status",
    "id",
)
TEMPLATE_FIELDS_DEFAULT = ("name", "parameter_format", "components", "language", "status", "category", "id")
# Every field of Meta's WhatsAppMessageTemplate node: a request may name any of them (Meta answers 100
# only for a name the node does not have); those the sandbox has no value for are left out, as Meta does.
TEMPLATE_FIELDS = (
    "id", "name", "language", "status", "category", "components", "parameter_format", "quality_score",
    "rejected_reason", "previous_category", "correct_category", "sub_category", "message_send_ttl_seconds",
    "cta_url_link_tracking_opted_out", "library_template_name",
)
KINDS = {
    "graph.post_messages": "messages",
    "graph.upload_media": "media",
    "graph.message_templates": "templates",
    "graph.phone_numbers": "phone_numbers",
    "graph.get_object": "object",
    "graph.delete_object": "object",
    "graph.download_media": "media_download",
}


# faults and the request log -------------------------------------------------


@blueprint.before_request
def inject_faults():
    g.started = time.time()
    sandbox = current()
    if not any_fault(sandbox.state.faults):
        return
    with sandbox.state.lock:
        faults = dict(sandbox.state.faults)
        rng = sandbox.state.rng
        if faults["rate_limit_storm_until"] and request.endpoint == "graph.post_messages":
            if sandbox.state.clock.now() < faults["rate_limit_storm_until"]:
                raise GraphError(130429, "Injected storm: Cloud API message throughput has been reached.")
            # Over: clear it, so requests go back to the no-fault fast path.
            sandbox.state.faults = {**sandbox.state.faults, "rate_limit_storm_until": 0.0}
        server_error = faults["error_5xx_rate"] > 0 and rng.random() < faults["error_5xx_rate"]
        throttled = not server_error and faults["rate_limit_rate"] > 0 and rng.random() < faults["rate_limit_rate"]
        if faults["fail_texts_once"] and request.method == "POST":
            body = ((request.get_json(silent=True) or {}).get("text") or {}).get("body")
            if body in faults["fail_texts_once"]:
                sandbox.state.faults = {**faults, "fail_texts_once": tuple(
                    b for b in faults["fail_texts_once"] if b != body)}
                server_error = True
    if faults["latency_ms"]:
        time.sleep(faults["latency_ms"] / 1000)
    if server_error:
        raise GraphError(131000, "Injected fault: server error.")
    if throttled:
        raise GraphError(130429, "Injected fault: " + "Cloud API message throughput has been reached.")


def any_fault(faults: dict) -> bool:
    # `state.faults` is replaced whole on every change, never changed in place: one read is a consistent view.
    # recipient_errors are applied in messages.send, where the recipient's wa_id is known.
    return bool(faults["error_5xx_rate"] or faults["rate_limit_rate"] or faults["fail_texts_once"]
                or faults["latency_ms"] or faults["rate_limit_storm_until"])


def answer(payload):
    """The JSON answer, kept for the request log so that it need not parse the response back."""
    g.answer = payload
    return jsonify(payload)


@blueprint.after_request
def record_request(response: Response) -> Response:
    sandbox = current()
    # Only a multipart body can carry files; asking anything else for them parses its form for nothing.
    if request.mimetype == "multipart/form-data" and request.files:
        files = {name: {"filename": f.filename, "content_type": f.mimetype} for name, f in request.files.items()}
        body = {"form": request.form.to_dict(), "files": files}
    else:
        body = request.get_json(silent=True)
    answered = g.pop("answer", None)
    if answered is None and response.is_json:
        answered = response.get_json(silent=True)
    error = answered.get("error") if isinstance(answered, dict) else None
    entry = {
        "at": g.get("started", time.time()),
        "method": request.method,
        "path": request.path,
        "kind": KINDS.get(request.endpoint, "unknown"),
        "object_id": (request.view_args or {}).get("object_id"),
        "query": request.args.to_dict(),
        "body": body,
        "status_code": response.status_code,
        "response": answered,
        "error_code": error.get("code") if isinstance(error, dict) else None,
    }
    with sandbox.state.lock:
        sandbox.state.requests.append(entry)
    return response


# authorization ---------------------------------------------------------------


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _check_token_known(sandbox: Sandbox) -> str:
    token = _bearer_token()
    if token is None:
        raise GraphError(190, "An active access token must be used (Authorization: Bearer <token>).")
    if not any(number.access_token == token for number in sandbox.state.numbers.values()):
        raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
    return token


def _number_for(sandbox: Sandbox, object_id: str) -> Number:
    token = _check_token_known(sandbox)
    number = sandbox.state.numbers.get(object_id)
    if number is None:
        raise unknown_object(object_id, request.method)
    if number.access_token != token:
        raise GraphError(190, f"The access token does not belong to phone number {object_id}.")
    return number


def _check_waba_token(sandbox: Sandbox, waba_id: str) -> None:
    token = _check_token_known(sandbox)
    numbers = sandbox.state.numbers_of_waba(waba_id)
    if not numbers:
        raise unknown_object(waba_id, request.method)
    if all(number.access_token != token for number in numbers):
        raise GraphError(190, f"The access token does not belong to WhatsApp Business Account {waba_id}.")


def _select_fields(full: dict, defaults: tuple[str, ...], node_type: str, node_fields: tuple[str, ...] = ()) -> dict:
    """The fields asked for (`?fields=`), or the node's defaults. A name the node has but this object
    holds no value for is left out of the answer; a name the node does not have is code 100."""
    wanted = request.args.get("fields")
    names = [name.strip() for name in wanted.split(",") if name.strip()] if wanted else list(defaults)
    for name in names:
        if name not in full and name not in node_fields:
            raise invalid(f"Tried accessing nonexisting field ({name}) on node type ({node_type})")
    return {name: full[name] for name in dict.fromkeys([*names, "id"]) if name in full}


# messages and media -----------------------------------------------------------


@blueprint.post("/<graph_version:version>/<object_id>/messages")
def post_messages(version: str, object_id: str):
    sandbox = current()
    body = request.get_json(silent=True)
    with sandbox.state.lock:
        number = _number_for(sandbox, object_id)
        if body is None:
            raise invalid("The request body must be JSON (Content-Type: application/json).")
        return answer(messages.handle(sandbox, number, body))


@blueprint.post("/<graph_version:version>/<object_id>/media")
def upload_media(version: str, object_id: str):
    sandbox = current()
    with sandbox.state.lock:
        number = _number_for(sandbox, object_id)
    if request.form.get("messaging_product") != "whatsapp":
        raise invalid("The parameter messaging_product is required and must be 'whatsapp'.")
    upload = request.files.get("file")
    if upload is None:
        raise invalid("The parameter file is required.")
    mime_type = request.form.get("type") or upload.mimetype
    data = upload.read()
    media.check_upload(mime_type, len(data))
    with sandbox.state.lock:
        stored = media.store(sandbox.state, phone_number_id=number.phone_number_id, waba_id=number.waba_id,
                             mime_type=mime_type, data=data, ttl=UPLOADED_MEDIA_TTL, filename=upload.filename)
    return jsonify({"id": stored.id})


@blueprint.get(media.DOWNLOAD_PATH)
def download_media():
    sandbox = current()
    with sandbox.state.lock:
        stored = media.resolve_download(sandbox.state, request.args.get("mid", ""), request.args.get("ext", ""),
                                        request.args.get("hash", ""))
        if stored is None:
            return jsonify({"error": "URL expired or invalid; fetch a fresh URL from GET /{media-id}"}), 404
        token = _bearer_token()
        allowed = {number.access_token for number in sandbox.state.numbers_of_waba(stored.waba_id)}
        if token not in allowed:
            return jsonify({"error": "Authorization: Bearer <token> of the media's business is required"}), 401
    return Response(stored.data, mimetype=stored.mime_type)


# objects by id: phone numbers, media, templates -------------------------------------------


def describe_number(sandbox: Sandbox, number: Number) -> dict:
    tier = sandbox.state.portfolio_of(number).tier
    healthy = number.status == "CONNECTED" and number.quality_rating != "RED"
    return {
        "verified_name": number.verified_name,
        "code_verification_status": "VERIFIED",
        "display_phone_number": number.display_phone_number,
        "quality_rating": number.quality_rating,
        "platform_type": "CLOUD_API",
        "throughput": {"level": "HIGH" if number.throughput_mps >= 1000 else "STANDARD"},
        "whatsapp_business_manager_messaging_limit": tier,
        "messaging_limit_tier": tier,  # deprecated by Meta; only when asked for
        "name_status": "APPROVED",
        "status": number.status,
        "account_mode": "LIVE",
        "is_official_business_account": False,
        "health_status": {
            "can_send_message": "AVAILABLE" if healthy else "LIMITED",
            "entities": [{"entity_type": "PHONE_NUMBER", "id": number.phone_number_id,
                          "can_send_message": "AVAILABLE" if healthy else "LIMITED"}],
        },
        "id": number.phone_number_id,
    }


@blueprint.get("/<graph_version:version>/<object_id>")
def get_object(version: str, object_id: str):
    sandbox = current()
    state = sandbox.state
    with state.lock:
        token = _check_token_known(sandbox)
        if object_id in state.numbers:
            number = _number_for(sandbox, object_id)
            return jsonify(_select_fields(describe_number(sandbox, number), NUMBER_FIELDS_DEFAULT,
                                          "WhatsAppBusinessPhoneNumber"))
        stored = media.live(state, object_id)
        if stored is not None:
            owner = request.args.get("phone_number_id")
            allowed = {n.access_token for n in state.numbers_of_waba(stored.waba_id)}
            if token not in allowed or (owner is not None and owner != stored.phone_number_id):
                raise unknown_object(object_id, request.method)
            return jsonify(media.describe(stored, media.download_url(state, request.host_url, stored)))
        template = state.templates.get(object_id)
        if template is not None:
            _check_waba_token(sandbox, template.waba_id)
            return jsonify(_select_fields(template.describe(), TEMPLATE_FIELDS_DEFAULT, "WhatsAppMessageTemplate",
                                          TEMPLATE_FIELDS))
        raise unknown_object(object_id, request.method)


@blueprint.delete("/<graph_version:version>/<object_id>")
def delete_object(version: str, object_id: str):
    sandbox = current()
    state = sandbox.state
    with state.lock:
        token = _check_token_known(sandbox)
        stored = media.live(state, object_id)
        if stored is None or token not in {n.access_token for n in state.numbers_of_waba(stored.waba_id)}:
            raise unknown_object(object_id, request.method)
        del state.media[object_id]
    return jsonify({"success": True})


@blueprint.get("/<graph_version:version>/<object_id>/phone_numbers")
def phone_numbers(version: str, object_id: str):
    sandbox = current()
    with sandbox.state.lock:
        _check_waba_token(sandbox, object_id)
        data = [_select_fields(describe_number(sandbox, number), NUMBER_FIELDS_DEFAULT, "WhatsAppBusinessPhoneNumber")
                for number in sandbox.state.numbers_of_waba(object_id)]
    return jsonify({"data": data, "paging": {"cursors": {"before": "", "after": ""}}})


# templates management ----------------------------------------------------------


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"position": position}).encode()).decode()


def _position(cursor: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["position"])
    except (ValueError, KeyError, TypeError):
        raise invalid("The parameter after is not a valid cursor.") from None


@blueprint.route("/<graph_version:version>/<object_id>/message_templates", methods=["GET", "POST", "DELETE"])
def message_templates(version: str, object_id: str):
    sandbox = current()
    state = sandbox.state
    with state.lock:
        _check_waba_token(sandbox, object_id)
        if request.method == "POST":
            body = request.get_json(silent=True)
            template = sandbox.create_template(object_id, body)
            return jsonify({"id": template.id, "status": template.status, "category": template.category})
        if request.method == "DELETE":
            return jsonify(_delete_templates(sandbox, object_id))
        return jsonify(_list_templates(sandbox, object_id, version))


def _list_templates(sandbox: Sandbox, waba_id: str, version: str) -> dict:
    found = [t for t in sandbox.state.templates.values() if t.waba_id == waba_id]
    for name in ("name", "status", "language", "category"):
        wanted = request.args.get(name)
        if wanted:
            found = [t for t in found if getattr(t, name).lower() == wanted.lower()]
    try:
        limit = min(max(int(request.args.get("limit", 25)), 1), 1000)
    except ValueError:
        raise invalid("The parameter limit must be an integer.") from None
    start = _position(request.args["after"]) if request.args.get("after") else 0
    page = found[start:start + limit]
    data = [_select_fields(t.describe(), TEMPLATE_FIELDS_DEFAULT, "WhatsAppMessageTemplate", TEMPLATE_FIELDS)
            for t in page]
    paging: dict = {"cursors": {"before": _cursor(start), "after": _cursor(start + len(page))}}
    if start + limit < len(found):
        query = {**request.args.to_dict(), "after": paging["cursors"]["after"]}
        paging["next"] = f"{request.base_url}?" + "&".join(f"{k}={v}" for k, v in query.items())
    return {"data": data, "paging": paging}


def _delete_templates(sandbox: Sandbox, waba_id: str) -> dict:
    name = request.args.get("name")
    if not name:
        raise invalid("The parameter name is required.")
    hsm_id = request.args.get("hsm_id")
    doomed = [t for t in sandbox.state.templates.values()
              if t.waba_id == waba_id and t.name == name and (hsm_id is None or t.id == hsm_id)]
    if not doomed:
        raise invalid(f"Message template {name!r} was not found.")
    for template in doomed:
        del sandbox.state.templates[template.id]
    return {"success": True}
