"""The PyTake HTTP API: a thin Flask app that validates, calls one service, and returns.

Anything slow or external becomes an intent record plus a task published after commit.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, send_from_directory
from flask_cors import CORS
from swagger_ui_bundle import swagger_ui_path

from shared.logs import configure_logging
from shared.settings import Settings, get_settings, use_settings
from web import auth
from web import db as web_db
from web import request_context
from web.api import register_blueprints
from web.api_errors_doc import document_errors
from web.errors import register_error_handlers
from web.extensions import Api, StrictJSONProvider
from web.intake import WebhookIntake


REDOC_ASSETS = Path(__file__).parent / "static" / "redoc"


def create_app(settings: Settings | None = None) -> Flask:
    if settings is not None:
        use_settings(settings)
    settings = get_settings()
    configure_logging(settings)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        DEBUG=settings.debug,
        MAX_CONTENT_LENGTH=settings.max_request_bytes,
        API_TITLE="PyTake API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",  # served from the swagger-ui-bundle wheel: works offline
        OPENAPI_REDOC_PATH="/redoc",
        OPENAPI_REDOC_URL="/redoc/assets/redoc.standalone.js",  # vendored in web/static/redoc: works offline
        API_SPEC_OPTIONS={
            "security": [{"bearerAuth": []}],
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
            },
            "info": {
                "description": (
                    "WhatsApp Business automation: shared inbox, chatbots, template campaigns, reports. "
                    "Every error has the shape {code, message, details, request_id}. Asynchronous operations "
                    "answer 202 with a job to poll at GET /api/v1/jobs/{id}."
                )
            }
        },
    )
    app.json = StrictJSONProvider(app)
    request_context.init_app(app)
    web_db.init_app(app)
    auth.init_app(app)
    request_context.init_body_rules(app)
    if settings.cors_origins:
        CORS(app, origins=list(settings.cors_origins), expose_headers=["X-Request-ID", "Retry-After"])

    app.add_url_rule(
        "/docs/assets/<path:filename>",
        "swagger_ui_assets",
        lambda filename: send_from_directory(str(swagger_ui_path), filename, max_age=86400),
    )
    app.add_url_rule(
        "/redoc/assets/<path:filename>",
        "redoc_assets",
        lambda filename: send_from_directory(str(REDOC_ASSETS), filename, max_age=86400),
    )
    api = Api(app)
    register_error_handlers(app)
    register_blueprints(api, prefix=settings.api_v1_prefix)
    document_errors(api, app)
    app.wsgi_app = WebhookIntake(app.wsgi_app, path=f"{settings.api_v1_prefix}/webhooks/whatsapp",
                                 max_bytes=settings.max_request_bytes)
    return app
