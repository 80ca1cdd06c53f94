"""The sandbox's Flask app: the Graph API routes Meta serves, plus the /_sandbox control API.

`create_app(config)` accepts the global settings of `state.DEFAULT_CONFIG` (seed, template_review_seconds,
webhook_retry_delays, webhook_timeout_seconds, log_limit) and, to start pre-populated (also after a reset),
`faults`, `numbers` (control-API number configs) and `templates` (definitions with `waba_id`, approved
unless they give a `status`).
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from sandbox import ai, control, graph
from sandbox.errors import GraphError
from sandbox.runtime import Sandbox

MAX_UPLOAD_BYTES = 110 * 1024 * 1024  # documents may be 100 MB


class GraphVersionConverter(BaseConverter):
    """`v21.0`-style path segment, so Graph routes never shadow /_sandbox or the media download path."""

    regex = r"v\d+\.\d+"


def create_app(config: dict | None = None) -> Flask:
    app = Flask("sandbox", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    app.json.sort_keys = False  # keep Meta's key order in answers
    app.url_map.converters["graph_version"] = GraphVersionConverter
    app.extensions["sandbox"] = Sandbox.create(config)
    app.register_blueprint(graph.blueprint)
    app.register_blueprint(control.blueprint)
    app.register_blueprint(ai.blueprint)

    @app.errorhandler(GraphError)
    def graph_error(error: GraphError):
        return jsonify(error.envelope()), error.http_status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if request.path.startswith(("/_sandbox", "/ai/")):
            return jsonify({"error": error.description}), error.code
        envelope = GraphError(100, f"Unknown path or method: {request.method} {request.path}").envelope()
        return jsonify(envelope), error.code

    return app
