"""The control API under /_sandbox: what tests and demos use to drive the sandbox and look inside it.

Plain JSON in and out; errors are `{"error": "..."}` with 400 (bad payload) or 404 (unknown id).
"""

from __future__ import annotations

import secrets

import requests
from flask import Blueprint, jsonify, request
from werkzeug.exceptions import NotFound

from sandbox import inbound
from sandbox.errors import GraphError
from sandbox.runtime import current
from sandbox.state import NUMBER_FIELDS, TIERS, ConfigError
from sandbox.webhooks import described, envelope, quality_value

blueprint = Blueprint("control", __name__, url_prefix="/_sandbox")

QUALITY_RANK = {"GREEN": 3, "YELLOW": 2, "RED": 1, "NA": 0, "UNKNOWN": 0}
QUALITY_EVENTS = ("FLAGGED", "UNFLAGGED", "DOWNGRADE", "UPGRADE", "ONBOARDING", "THROUGHPUT_UPGRADE")
TEMPLATE_STATUSES = ("APPROVED", "PENDING", "REJECTED", "PAUSED", "DISABLED", "IN_APPEAL", "FLAGGED", "REINSTATED",
                     "PENDING_DELETION", "DELETED", "ARCHIVED", "LIMIT_EXCEEDED", "LOCKED")


@blueprint.errorhandler(ConfigError)
def bad_payload(error: ConfigError):
    return jsonify({"error": str(error)}), 400


@blueprint.errorhandler(GraphError)
def refused_by_graph_rules(error: GraphError):
    return jsonify({"error": error.details, "code": error.code}), 400


def _json() -> dict:
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ConfigError("expected a JSON object")
    return body


def _number(phone_number_id: str):
    number = current().state.numbers.get(phone_number_id)
    if number is None:
        raise NotFound(f"unknown phone_number_id {phone_number_id}")
    return number


def _describe_number(number) -> dict:
    return number.describe(current().state.portfolio_of(number).tier)


def _filtered(items, **wanted):
    return [item for item in items if all(item.get(key) == value for key, value in wanted.items() if value is not None)]


# state as a whole ------------------------------------------------------------------


@blueprint.post("/reset")
def reset():
    current().reset()
    return jsonify({"reset": True})


@blueprint.get("/config")
def get_config():
    return jsonify(current().state.config)


@blueprint.patch("/config")
def change_config():
    state = current().state
    with state.lock:
        state.set_config(_json())
        return jsonify(state.config)


@blueprint.get("/faults")
def get_faults():
    return jsonify(current().state.faults)


@blueprint.patch("/faults")
def change_faults():
    """Set some fault knobs (state.DEFAULT_FAULTS), e.g. `{"rate_limit_storm_seconds": 30}` (every send 130429
    for 30 s of the sandbox clock; 0 ends it) or `{"recipient_errors": {"+5511…": {"code": 131049, "times": 1,
    "async": false}}}` (replaces the whole map; times null = always; async: accepted, then a failed status)."""
    state = current().state
    with state.lock:
        state.set_faults(_json())
        return jsonify(state.faults)


@blueprint.get("/clock")
def get_clock():
    clock = current().state.clock
    return jsonify({"now": clock.now(), "frozen": clock.frozen})


@blueprint.post("/clock")
def change_clock():
    data = _json()
    state = current().state
    with state.lock:
        clock = state.clock
        if data.get("freeze") is True:
            clock.freeze()
        elif data.get("freeze") is False:
            clock.unfreeze()
        if "advance" in data:
            try:
                clock.advance(float(data["advance"]))
            except (TypeError, ValueError):
                raise ConfigError("advance must be a number of seconds") from None
        return jsonify({"now": clock.now(), "frozen": clock.frozen})


@blueprint.post("/drain")
def drain():
    try:
        timeout = float(_json().get("timeout", 10))
    except (TypeError, ValueError):
        raise ConfigError("timeout must be a number of seconds") from None
    return jsonify({"idle": current().scheduler.drain(timeout)})


# numbers --------------------------------------------------------------------------


@blueprint.post("/numbers")
def register_number():
    state = current().state
    with state.lock:
        number = state.configure_number(_json())
        return jsonify(_describe_number(number)), 201


@blueprint.get("/numbers")
def list_numbers():
    state = current().state
    with state.lock:
        return jsonify({"data": [_describe_number(number) for number in state.numbers.values()]})


@blueprint.get("/numbers/<phone_number_id>")
def get_number(phone_number_id: str):
    with current().state.lock:
        return jsonify(_describe_number(_number(phone_number_id)))


@blueprint.patch("/numbers/<phone_number_id>")
def change_number(phone_number_id: str):
    state = current().state
    with state.lock:
        _number(phone_number_id)
        number = state.configure_number(_json(), partial=True, phone_number_id=phone_number_id)
        return jsonify(_describe_number(number))


@blueprint.post("/numbers/<phone_number_id>/quality")
def change_quality(phone_number_id: str):
    """Change quality rating and/or messaging-limit tier; sends phone_number_quality_update."""
    data = _json()
    unknown = set(data) - {"quality_rating", "messaging_limit_tier", "event"}
    if unknown:
        raise ConfigError(f"unknown fields: {', '.join(sorted(unknown))}")
    sandbox = current()
    state = sandbox.state
    with state.lock:
        number = _number(phone_number_id)
        portfolio = state.portfolio_of(number)
        old_quality, old_tier = number.quality_rating, portfolio.tier
        try:
            new_quality = NUMBER_FIELDS["quality_rating"](data.get("quality_rating", old_quality))
            new_tier = NUMBER_FIELDS["messaging_limit_tier"](data.get("messaging_limit_tier", old_tier))
        except ConfigError as exc:
            raise ConfigError(f"quality change: {exc}") from None
        event = data.get("event") or _quality_event(old_quality, new_quality, old_tier, new_tier)
        if event not in QUALITY_EVENTS:
            raise ConfigError(f"nothing changed; give a new quality_rating or messaging_limit_tier, or an event "
                              f"among {', '.join(QUALITY_EVENTS)}")
        number.quality_rating = new_quality
        portfolio.tier = new_tier
        if new_quality == "RED":
            number.status = "FLAGGED"
        elif number.status == "FLAGGED":
            number.status = "CONNECTED"
        if event == "THROUGHPUT_UPGRADE":
            number.throughput_mps = max(number.throughput_mps, 1000)
        value = quality_value(number, event, old_tier, new_tier)
        payload = envelope([(number.waba_id, "phone_number_quality_update", value)], time_field=state.clock.now())
        sandbox.webhooks.to_number(number, payload, field="phone_number_quality_update")
        return jsonify({"event": event, "value": value, "number": _describe_number(number)})


def _quality_event(old_quality: str, new_quality: str, old_tier: str, new_tier: str) -> str | None:
    if old_tier != new_tier:
        old_limit, new_limit = TIERS[old_tier] or float("inf"), TIERS[new_tier] or float("inf")
        return "UPGRADE" if new_limit > old_limit else "DOWNGRADE"
    if QUALITY_RANK[new_quality] < QUALITY_RANK[old_quality]:
        return "FLAGGED"
    if QUALITY_RANK[new_quality] > QUALITY_RANK[old_quality]:
        return "UNFLAGGED"
    return None


@blueprint.post("/numbers/<phone_number_id>/verify-callback")
def verify_callback(phone_number_id: str):
    """Run Meta's GET handshake (hub.mode/hub.challenge/hub.verify_token) against the number's callback URL."""
    data = _json()
    state = current().state
    with state.lock:
        number = _number(phone_number_id)
        url, token = number.callback_url, data.get("verify_token", number.verify_token)
        timeout = state.config["webhook_timeout_seconds"]
    if not url:
        raise ConfigError("the number has no callback_url")
    challenge = str(secrets.randbelow(10**10))
    params = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": token or ""}
    try:
        response = requests.get(url, params=params, timeout=timeout)
    except requests.RequestException as exc:
        return jsonify({"verified": False, "error": f"{type(exc).__name__}: {exc}"})
    return jsonify({
        "verified": response.status_code == 200 and response.text == challenge,
        "status_code": response.status_code,
        "body": response.text[:500],
    })


# simulated customers --------------------------------------------------------------------


@blueprint.post("/numbers/<phone_number_id>/inbound")
def simulate_inbound(phone_number_id: str):
    """One webhook POST carrying one or more customer messages (and optional statuses) for this number."""
    data = _json()
    sandbox = current()
    with sandbox.state.lock:
        number = _number(phone_number_id)
        value, message_ids = inbound.value_for(sandbox.state, number, data)
        payload = envelope([(number.waba_id, "messages", value)])
        sandbox.webhooks.to_number(number, payload, field="messages")
    return jsonify({"message_ids": message_ids, "webhook": payload})


@blueprint.post("/inbound")
def simulate_inbound_batch():
    """One webhook POST spanning several numbers (and WABAs): `{"items": [{"phone_number_id", ...spec}]}`."""
    items = _json().get("items")
    if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
        raise ConfigError("items must be a non-empty list of objects")
    sandbox = current()
    with sandbox.state.lock:
        numbers = [_number(str(item.get("phone_number_id"))) for item in items]
        targets = {(number.callback_url, number.app_secret) for number in numbers}
        if len(targets) != 1:
            raise ConfigError("numbers in one batch must share callback_url and app_secret (one app)")
        changes, message_ids = [], []
        for number, item in zip(numbers, items):
            spec = {key: value for key, value in item.items() if key != "phone_number_id"}
            value, ids = inbound.value_for(sandbox.state, number, spec)
            changes.append((number.waba_id, "messages", value))
            message_ids.extend(ids)
        payload = envelope(changes)
        url, secret = targets.pop()
        sandbox.webhooks.to_target(url, secret, payload, field="messages")
    return jsonify({"message_ids": message_ids, "webhook": payload})


@blueprint.get("/inbound")
def list_inbound():
    state = current().state
    with state.lock:
        items = [message.describe() for message in state.inbound.values()]
    return jsonify({"data": _filtered(items, phone_number_id=request.args.get("phone_number_id"))})


# templates ------------------------------------------------------------------------------


@blueprint.post("/templates")
def seed_template():
    """Store a template without review (status defaults to APPROVED; no webhook)."""
    sandbox = current()
    with sandbox.state.lock:
        template = sandbox.seed_template(_json())
        return jsonify({**template.describe(), "waba_id": template.waba_id}), 201


@blueprint.get("/templates")
def list_templates():
    state = current().state
    with state.lock:
        items = [{**t.describe(), "waba_id": t.waba_id} for t in state.templates.values()]
    return jsonify({"data": _filtered(items, waba_id=request.args.get("waba_id"), name=request.args.get("name"))})


@blueprint.post("/templates/<template_id>/status")
def change_template_status(template_id: str):
    """Set a template's status (PAUSED, DISABLED, ...); sends message_template_status_update."""
    data = _json()
    status = str(data.get("status", "")).upper()
    if status not in TEMPLATE_STATUSES:
        raise ConfigError(f"status must be one of {', '.join(TEMPLATE_STATUSES)}")
    sandbox = current()
    with sandbox.state.lock:
        template = sandbox.state.templates.get(template_id)
        if template is None:
            raise NotFound(f"unknown template id {template_id}")
        sandbox.set_template_status(template, status, str(data.get("reason", "NONE")))
        return jsonify({**template.describe(), "waba_id": template.waba_id})


# what the sandbox saw and sent ------------------------------------------------------------


@blueprint.get("/messages")
def list_messages():
    """Messages the numbers sent and the sandbox accepted (with their scheduled statuses)."""
    state = current().state
    with state.lock:
        items = [state.sent[wamid].describe() for wamid in state.sent_order if wamid in state.sent]
    args = request.args
    return jsonify({"data": _filtered(items, phone_number_id=args.get("phone_number_id"), wa_id=args.get("to"),
                                      type=args.get("type"))})


@blueprint.get("/requests")
def list_requests():
    """Every Graph API call received (templates management calls have kind=templates)."""
    state = current().state
    with state.lock:
        items = list(state.requests)
    args = request.args
    return jsonify({"data": _filtered(items, kind=args.get("kind"), object_id=args.get("object_id"),
                                      method=args.get("method"))})


@blueprint.get("/webhooks")
def list_webhooks():
    """Webhooks sent or due, with raw body, signature, attempts and outcome."""
    state = current().state
    with state.lock:
        items = [described(record) for record in state.webhooks]
    args = request.args
    return jsonify({"data": _filtered(items, field=args.get("field"), phone_number_id=args.get("phone_number_id"),
                                      outcome=args.get("outcome"))})
