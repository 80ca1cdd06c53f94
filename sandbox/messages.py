"""The send pipeline behind `POST /{version}/{phone_number_id}/messages`.

Order of the checks: shape (100), recipient = sender (131021), template (132001/132015/132016/132000/
132012) or window (131047), an error injected for the recipient (`faults.recipient_errors`, which uses
up one of its `times`), throughput (130429), pair rate (131056). A request refused by any of them changes
nothing else. An accepted message may still fail later, as at Meta, with a `failed` status webhook:
undeliverable recipient (131026), unknown or mismatched media id (131053), messaging limit exhausted
(the number's `messaging_limit_error_code`), 131047 when the number reports window errors asynchronously,
or the injected recipient error when it is set `async`.
All functions here expect `state.lock` to be held.
"""

from __future__ import annotations

import secrets

from sandbox import limits, media, templates
from sandbox.errors import GraphError, async_error, invalid
from sandbox.runtime import Sandbox
from sandbox.state import (
    DAY,
    FREE_ENTRY_POINT_SECONDS,
    WINDOW_SECONDS,
    Customer,
    Number,
    SentMessage,
    Template,
    new_wamid,
)
from sandbox.validation import media_ids, validate_mark_read, validate_send


def handle(sandbox: Sandbox, number: Number, body) -> dict:
    if isinstance(body, dict) and "status" in body and "to" not in body:
        return mark_read(sandbox, number, body)
    return send(sandbox, number, body)


def mark_read(sandbox: Sandbox, number: Number, body: dict) -> dict:
    message_id = validate_mark_read(body)
    inbound = sandbox.state.inbound.get(message_id)
    if inbound is None or inbound.phone_number_id != number.phone_number_id:
        raise invalid(f"The parameter message_id ({message_id}) is not a message this number received.")
    inbound.read = True
    return {"success": True}


def send(sandbox: Sandbox, number: Number, body) -> dict:
    state = sandbox.state
    request = validate_send(body)
    now = state.clock.now()
    wa_id = number.wa_id_map.get(request["digits"], request["digits"])
    if wa_id == number.display_phone_number:
        raise GraphError(131021, "The recipient phone number is the sender's own number.")
    customer = state.customer(number.phone_number_id, wa_id)
    window_open = customer.window_open(now)

    template = None
    if request["type"] == "template":
        content = request["content"]
        template = templates.find_for_send(
            state.templates.values(), number.waba_id, content["name"], content["language"]["code"]
        )
        templates.check_send(template, content)
    elif not window_open and not number.async_window_errors:
        raise GraphError(131047)

    injected = _recipient_error(state, request["digits"], wa_id) if state.faults["recipient_errors"] else None
    if injected is not None and not injected["async"]:
        raise GraphError(injected["code"])

    limits.check_throughput(number, now)
    limits.check_pair_rate(number, customer, now)
    limits.count_throughput(number, now)
    limits.count_pair_rate(number, customer, now)

    message = SentMessage(
        wamid=new_wamid(),
        phone_number_id=number.phone_number_id,
        to=request["to"],
        wa_id=wa_id,
        type=request["type"],
        request=body,
        created_at=now,
        biz_opaque_callback_data=body.get("biz_opaque_callback_data"),
        template_category=template.category if template else None,
    )
    if injected is not None:
        message.failure = async_error(injected["code"])
    else:
        message.failure = _failure(sandbox, number, request, wa_id, template, window_open, now)
    if message.failure is None:
        message.pricing, message.conversation = _pricing(customer, template, window_open, now)
    state.record_sent(message)
    sandbox.webhooks.statuses_for(number, message, now)
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": request["to"], "wa_id": wa_id}],
        "messages": [{"id": message.wamid, "message_status": "accepted"}],
    }


def _recipient_error(state, to_digits: str, wa_id: str) -> dict | None:
    """The injected error for this recipient (`faults.recipient_errors`), using up one of its `times`."""
    errors = state.faults["recipient_errors"]
    key = wa_id if wa_id in errors else to_digits if to_digits in errors else None
    if key is None:
        return None
    injected = errors[key]
    if injected["times"] is not None:
        remaining = {**errors}
        if injected["times"] > 1:
            remaining[key] = {**injected, "times": injected["times"] - 1}
        else:
            del remaining[key]
        # Replaced whole, never changed in place (see graph.any_fault).
        state.faults = {**state.faults, "recipient_errors": remaining}
    return injected


def _failure(sandbox: Sandbox, number: Number, request: dict, wa_id: str, template: Template | None,
             window_open: bool, now: float) -> dict | None:
    """The async error this accepted message will fail with, or None if it will be delivered."""
    state = sandbox.state
    if wa_id in number.undeliverable:
        return async_error(131026)
    if template is None and not window_open:
        return async_error(131047)
    for kind, media_id in media_ids(request["type"], request["content"]):
        stored = media.live(state, media_id)
        if stored is None or stored.waba_id != number.waba_id:
            return async_error(131053, f"Media id {media_id} does not exist or has expired.")
        if media.kind_of(stored.mime_type) != kind:
            return async_error(131053, f"Media id {media_id} is {stored.mime_type}, which cannot be sent as {kind}.")
    if template is not None and not window_open:
        portfolio = state.portfolio_of(number)
        if not limits.within_messaging_limit(portfolio, wa_id, now):
            return async_error(
                number.messaging_limit_error_code,
                f"The business portfolio reached its messaging limit ({portfolio.tier}): unique users reached "
                "outside a customer-service window in the last 24 hours.",
            )
        limits.count_reach(portfolio, wa_id, now)
    return None


def _pricing(customer: Customer, template: Template | None, window_open: bool, now: float) -> tuple[dict, dict]:
    """Per-message pricing (PMP) and the legacy conversation object for the status webhooks."""
    referral_recent = customer.referral_at is not None and now - customer.referral_at < WINDOW_SECONDS
    if customer.free_entry_until <= now and referral_recent:
        # Replying within 24 h of a click-to-WhatsApp entry opens a 72 h free-entry-point window.
        customer.free_entry_until = now + FREE_ENTRY_POINT_SECONDS
        customer.referral_at = None
    category = template.category.lower() if template else "service"
    if now < customer.free_entry_until:
        billable, pricing_type = False, "free_entry_point"
    elif template is None or (category == "utility" and window_open):
        billable, pricing_type = False, "free_customer_service"
    else:
        billable, pricing_type = True, "regular"
    if customer.conversation_id is None or customer.conversation_expires <= now:
        customer.conversation_id = secrets.token_hex(16)
        customer.conversation_expires = now + DAY
    pricing = {"billable": billable, "pricing_model": "PMP", "category": category, "type": pricing_type}
    conversation = {
        "id": customer.conversation_id,
        "expiration_timestamp": str(int(customer.conversation_expires)),
        "origin": {"type": category},
    }
    return pricing, conversation
