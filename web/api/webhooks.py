"""The door Meta calls: the subscription handshake and signed event deliveries."""

import hmac

from flask import Response, request
from flask.views import MethodView

from shared.errors import ForbiddenError, UnauthorizedError
from shared.services import numbers, webhooks
from shared.settings import get_settings
from web.auth import public
from web.blueprint import Blueprint
from web.db import get_session
from web.intake import SIGNATURE_REFUSED
from web.request_context import RAW_BODY_ENDPOINTS

blp = Blueprint("webhooks", __name__, description="Meta's webhook calls (signed; no bearer token)")


class WebhookSignatureRefusedError(UnauthorizedError):
    code = SIGNATURE_REFUSED[0]


@blp.route("/whatsapp")
class WhatsAppWebhook(MethodView):
    @public
    @blp.doc(security=[], parameters=[
        {"in": "query", "name": "hub.mode", "schema": {"type": "string"}},
        {"in": "query", "name": "hub.verify_token", "schema": {"type": "string"}},
        {"in": "query", "name": "hub.challenge", "schema": {"type": "string"}},
    ])
    @blp.response(200, description="The challenge, echoed")
    def get(self):
        """Meta's subscription handshake: echo hub.challenge when hub.verify_token is one of ours."""
        token = request.args.get("hub.verify_token", "")
        expected = numbers.verify_tokens(get_session())
        if get_settings().whatsapp_verify_token:
            expected.append(get_settings().whatsapp_verify_token)
        matched = any(hmac.compare_digest(token.encode(), known.encode()) for known in expected)
        if request.args.get("hub.mode") != "subscribe" or not token or not matched:
            raise ForbiddenError("Unknown verify token")
        return Response(request.args.get("hub.challenge", ""), mimetype="text/plain")

    @public
    @blp.doc(security=[])
    @blp.response(200, description="Stored; processed in the background")
    def post(self):
        """Receive events: the signature is checked over the raw bytes, the body stored, and 200 returned at once.

        Served by web/intake.py ahead of Flask; this view answers what that layer passes on (no
        Content-Length, a body over the limit)."""
        try:
            intake = webhooks.receive_webhook(lambda: get_session(single_statement=True),
                                              body=request.get_data(cache=False),
                                              signature=request.headers.get("X-Hub-Signature-256"))
        except webhooks.WebhookSignatureError as exc:
            raise WebhookSignatureRefusedError(SIGNATURE_REFUSED[1]) from exc
        return {"status": "received" if intake.event_id else "duplicate"}


RAW_BODY_ENDPOINTS.add("webhooks.WhatsAppWebhook")
