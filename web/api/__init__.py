"""Every blueprint, registered in one place."""

from web.api import (
    ai_settings,
    alerts,
    auth,
    campaigns,
    chatbot_flows,
    chatbots,
    contact_attributes,
    contact_imports,
    contacts,
    conversations,
    departments,
    health,
    jobs,
    messages,
    numbers,
    organizations,
    plans,
    segments,
    tags,
    templates,
    users,
    webhooks,
)

# (path under the API prefix, blueprint)
API_BLUEPRINTS = [
    ("auth", auth.blp),
    ("organizations", organizations.blp),
    ("plans", plans.blp),
    ("users", users.blp),
    ("departments", departments.blp),
    ("jobs", jobs.blp),
    ("contacts", contacts.blp),
    ("contacts", contact_imports.blp),  # /contacts/imports..., /contacts/exports
    ("tags", tags.blp),
    ("segments", segments.blp),
    ("contact-attributes", contact_attributes.blp),
    ("files", contact_imports.files_blp),
    ("numbers", numbers.blp),
    ("templates", templates.blp),
    ("webhooks", webhooks.blp),
    ("conversations", conversations.blp),
    ("messages", messages.blp),
    ("media", messages.media_blp),
    ("alerts", alerts.blp),
    ("chatbots", chatbots.blp),
    ("chatbots", chatbot_flows.blp),  # /chatbots/<id>/flows...
    ("ai-settings", ai_settings.blp),
    ("campaigns", campaigns.blp),
]


def register_blueprints(api, *, prefix: str) -> None:
    api.register_blueprint(health.blp)
    for path, blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint, url_prefix=f"{prefix}/{path}")
