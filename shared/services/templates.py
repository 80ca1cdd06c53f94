"""Templates pipeline: an organization's message templates, their review by Meta, and rendering.

Created here as DRAFT, submitted to Meta by a job (PENDING), then moved by Meta's
`message_template_status_update` webhooks (APPROVED, REJECTED, PAUSED...). Definitions are
checked before they leave (shared/whatsapp/templates.py), so Meta's review sees no malformed one.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import get_owned
from shared.errors import ConflictError, NotFoundError
from shared.models import MessageTemplate, WhatsAppNumber
from shared.queueing.names import SUBMIT_TEMPLATE
from shared.services.jobs import create_job
from shared.whatsapp import templates as template_rules


class TemplateNotFoundError(NotFoundError):
    code = "template_not_found"


class TemplateNotApprovedError(ConflictError):
    code = "template_not_approved"


def create_template(
    session: Session, *, org_id: uuid.UUID, number: WhatsAppNumber, definition: dict[str, Any],
    created_by_id: uuid.UUID | None,
) -> tuple[MessageTemplate, Any]:
    """Validate, store as DRAFT, and start the job that submits it to Meta."""
    clean = template_rules.validate_template(definition)
    exists = session.execute(select(MessageTemplate.id).where(
        MessageTemplate.organization_id == org_id, MessageTemplate.waba_id == number.waba_id,
        MessageTemplate.name == clean["name"], MessageTemplate.language == clean["language"],
    )).first()
    if exists:
        raise ConflictError(
            f"A template {clean['name']!r} in {clean['language']} already exists", details={"field": "name"}
        )
    template = MessageTemplate(
        organization_id=org_id, waba_id=number.waba_id, name=clean["name"], language=clean["language"],
        category=clean["category"], components=clean["components"], status="DRAFT",
    )
    session.add(template)
    session.flush()
    job, _ = create_job(
        session, org_id=org_id, kind="templates.submit", task_name=SUBMIT_TEMPLATE,
        params={"template_id": str(template.id), "number_id": str(number.id)}, created_by_id=created_by_id,
    )
    return template, job


def get_template(session: Session, *, org_id: uuid.UUID, template_id: uuid.UUID | str) -> MessageTemplate:
    return get_owned(session, MessageTemplate, template_id, org_id=org_id, not_found=TemplateNotFoundError)


def list_templates(
    session: Session, *, org_id: uuid.UUID, status: str | None = None, category: str | None = None,
    language: str | None = None, name: str | None = None,
) -> list[MessageTemplate]:
    query = select(MessageTemplate).where(MessageTemplate.organization_id == org_id)
    for column, value in ((MessageTemplate.status, status), (MessageTemplate.category, category),
                          (MessageTemplate.language, language), (MessageTemplate.name, name)):
        if value:
            query = query.where(column == value)
    return list(session.execute(query.order_by(MessageTemplate.name, MessageTemplate.language)).scalars())


def definition_of(template: MessageTemplate) -> dict[str, Any]:
    return {"name": template.name, "language": template.language, "category": template.category,
            "components": template.components}


def mark_submitted(template: MessageTemplate, response: dict[str, Any]) -> None:
    template.meta_template_id = str(response.get("id") or template.meta_template_id or "") or None
    template.status = response.get("status", "PENDING")
    template.category = response.get("category", template.category)
    template.submit_error = None


def upsert_from_meta(session: Session, *, org_id: uuid.UUID, waba_id: str, items: list[dict[str, Any]]) -> int:
    """Templates as Meta lists them, inserted or updated by (WABA, name, language)."""
    for item in items:
        values = {
            "organization_id": org_id, "waba_id": waba_id, "name": item["name"], "language": item["language"],
            "category": item.get("category", "UTILITY"), "status": item.get("status", "PENDING"),
            "meta_template_id": str(item.get("id")) if item.get("id") else None,
            "components": item.get("components", []), "quality_score": (item.get("quality_score") or {}).get("score"),
            "rejected_reason": item.get("rejected_reason") if item.get("rejected_reason") not in (None, "NONE") else None,
        }
        statement = insert(MessageTemplate).values(values)
        session.execute(statement.on_conflict_do_update(
            index_elements=[MessageTemplate.organization_id, MessageTemplate.waba_id, MessageTemplate.name,
                            MessageTemplate.language],
            index_where=MessageTemplate.deleted_at.is_(None),
            set_={k: statement.excluded[k] for k in ("category", "status", "meta_template_id", "components",
                                                     "quality_score", "rejected_reason")},
        ))
    return len(items)


def delete_template(session: Session, *, template: MessageTemplate) -> None:
    template.soft_delete()
    session.flush()


def render(template: MessageTemplate, variables: dict[str, Any]) -> list[dict[str, Any]]:
    """The exact Graph `components` for one recipient, or an error naming the missing or extra variable."""
    if template.status != "APPROVED":
        raise TemplateNotApprovedError(
            f"Template {template.name!r} is {template.status}; only APPROVED templates can be sent",
            details={"status": template.status},
        )
    return template_rules.render_components(definition_of(template), variables)
