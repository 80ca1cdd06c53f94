"""Every blueprint, registered in one place."""

from web.api import health, jobs


def register_blueprints(api, *, prefix: str) -> None:
    api.register_blueprint(health.blp)
    api.register_blueprint(jobs.blp, url_prefix=f"{prefix}/jobs")
