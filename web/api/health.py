"""Liveness and readiness for load balancers, orchestrators and people."""

import marshmallow as ma
from flask.views import MethodView

from shared.health import check_stores, ping_pools
from shared.settings import get_settings
from web.auth import public
from web.blueprint import Blueprint
from web.schemas.common import QueryArgsSchema

blp = Blueprint("health", __name__, description="Liveness and readiness probes")


class ReadinessQueryArgsSchema(QueryArgsSchema):
    deep = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "Also round-trip a ping task through every worker queue"},
    )


class CheckSchema(ma.Schema):
    status = ma.fields.String(metadata={"example": "ok"})
    latency_ms = ma.fields.Float()
    worker = ma.fields.String()
    error = ma.fields.String()


class ReadinessSchema(ma.Schema):
    status = ma.fields.String(metadata={"description": "ok, or unavailable when any check is down"})
    checks = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(CheckSchema))
    pools = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(CheckSchema))


class LivenessSchema(ma.Schema):
    status = ma.fields.String(metadata={"example": "ok"})


@blp.route("/healthz")
class Liveness(MethodView):
    @public
    @blp.doc(security=[])
    @blp.response(200, LivenessSchema)
    def get(self):
        """The process is up (no dependency is checked)."""
        return {"status": "ok"}


@blp.route("/readyz")
class Readiness(MethodView):
    @public
    @blp.doc(security=[])
    @blp.arguments(ReadinessQueryArgsSchema, location="query")
    @blp.response(200, ReadinessSchema)
    @blp.alt_response(503, schema=ReadinessSchema, description="At least one dependency or pool is down")
    def get(self, args):
        """PostgreSQL, Redis and MongoDB each reported; `?deep=1` also pings every worker pool."""
        checks = {name: result.as_dict() for name, result in check_stores().items()}
        body = {"checks": checks}
        healthy = all(result["status"] == "ok" for result in checks.values())
        if args["deep"]:
            pools = {queue: result.as_dict() for queue, result in ping_pools(get_settings().ping_timeout_seconds).items()}
            body["pools"] = pools
            healthy = healthy and all(result["status"] == "ok" for result in pools.values())
        body["status"] = "ok" if healthy else "unavailable"
        return body, 200 if healthy else 503
