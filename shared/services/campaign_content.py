"""What one campaign recipient gets: their variables read off the contact, the template rendered for them.

The drip (each message it queues) and the preview (a sample before the start) render through here, so the
preview shows exactly what goes.
"""

from __future__ import annotations

from typing import Any

from shared.campaigns import variables as campaign_variables
from shared.models import Contact, MessageTemplate
from shared.whatsapp import outbound
from shared.whatsapp import templates as template_rules


def contact_fields(contact: Contact) -> dict[str, Any]:
    """The fields a campaign's variables read from a contact."""
    return {"name": contact.name, "phone_e164": contact.phone_e164, "email": contact.email,
            "attributes": contact.custom_attributes or {}}


def content_for(template: MessageTemplate, definition: dict[str, Any],
                mapping: dict[str, Any] | campaign_variables.CompiledMapping, contact: Contact) -> dict[str, Any]:
    """The Graph `template` object for this recipient. Raises campaign_variables.MissingVariable (a source empty
    and no fallback), or the template module's TemplateVariablesError / TemplateDefinitionError."""
    components = template_rules.render_components(
        definition, campaign_variables.resolve(mapping, contact_fields(contact)))
    return outbound.template_content(template.name, template.language, components)


def body_text(definition: dict[str, Any], content: dict[str, Any]) -> str | None:
    """The body as the recipient reads it: the template's text with this recipient's values in place."""
    body = next((c for c in definition.get("components", []) if str(c.get("type", "")).upper() == "BODY"), None)
    if body is None:
        return None
    values = next((c["parameters"] for c in content.get("components", []) if c.get("type") == "body"), [])
    text = body.get("text", "")
    for number, parameter in enumerate(values, start=1):
        text = text.replace("{{%d}}" % number, str(parameter.get("text", "")))
    return text
