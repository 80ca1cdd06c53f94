"""Every blueprint, registered in one place."""

from web.api import auth, departments, health, jobs, organizations, plans, users

API_BLUEPRINTS = {
    "auth": auth.blp,
    "organizations": organizations.blp,
    "plans": plans.blp,
    "users": users.blp,
    "departments": departments.blp,
    "jobs": jobs.blp,
}


def register_blueprints(api, *, prefix: str) -> None:
    api.register_blueprint(health.blp)
    for path, blueprint in API_BLUEPRINTS.items():
        api.register_blueprint(blueprint, url_prefix=f"{prefix}/{path}")
