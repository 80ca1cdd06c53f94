"""WhatsApp control plane: number sync and template submission and sync, calling Meta's Graph API."""

from sqlalchemy.orm import Session

from shared.errors import DomainError
from shared.models import Job
from shared.queueing import names
from shared.services import numbers, templates
from shared.whatsapp.errors import GraphAPIError, GraphTransportError
from workers.base import Progress, TransientError, job_task


class GraphCallFailedError(DomainError):
    code = "graph_error"


def _graph_call(call):
    """Transient Graph failures retry the job; permanent ones fail it with Meta's code and message."""
    try:
        return call()
    except GraphAPIError as exc:
        if exc.retryable:
            raise TransientError(f"Graph {exc.code}: {exc.message}") from exc
        error = GraphCallFailedError(f"Meta refused: {exc.message}", details={"code": exc.code, "subcode": exc.subcode})
        error.code = f"graph_{exc.code}"
        raise error from exc
    except GraphTransportError as exc:
        raise TransientError(str(exc)) from exc


@job_task(names.SYNC_NUMBER)
def sync_number(session: Session, job: Job, progress: Progress) -> dict:
    """Refresh a number's name, quality rating, tier and status from Graph.

    Trigger: POST /numbers/{id}/sync, or a phone_number_quality_update webhook. Idempotency:
    the job claim; the sync overwrites with Meta's current values. Retry: transient Graph errors.
    Side effects: the number row.
    """
    number = numbers.get_number(session, org_id=job.organization_id, number_id=job.params["number_id"])
    info = _graph_call(lambda: numbers.graph_client(number).get_phone_number(number.phone_number_id))
    numbers.apply_phone_info(number, info)
    return {"quality_rating": number.quality_rating, "messaging_limit_tier": number.messaging_limit_tier,
            "status": number.status.value}


@job_task(names.SUBMIT_TEMPLATE)
def submit_template(session: Session, job: Job, progress: Progress) -> dict:
    """Submit a DRAFT template to Meta for review.

    Trigger: POST /templates. Idempotency: the job claim; a template already submitted (it has
    Meta's id) is not submitted again. Retry: transient Graph errors. Side effects: the template
    row (Meta's id, PENDING); the verdict arrives later by webhook.
    """
    template = templates.get_template(session, org_id=job.organization_id, template_id=job.params["template_id"])
    if template.meta_template_id:
        return {"status": template.status, "meta_template_id": template.meta_template_id}
    number = numbers.get_number(session, org_id=job.organization_id, number_id=job.params["number_id"])
    try:
        response = _graph_call(
            lambda: numbers.graph_client(number).create_template(template.waba_id, templates.definition_of(template))
        )
    except GraphCallFailedError as exc:
        template.status, template.submit_error = "REJECTED", exc.message
        raise
    templates.mark_submitted(template, response)
    return {"status": template.status, "meta_template_id": template.meta_template_id}


@job_task(names.SYNC_TEMPLATES)
def sync_templates(session: Session, job: Job, progress: Progress) -> dict:
    """Upsert every template Meta lists for the number's WABA (by WABA + name + language).

    Trigger: POST /templates/sync. Idempotency: the upsert. Retry: transient Graph errors.
    Side effects: template rows.
    """
    number = numbers.get_number(session, org_id=job.organization_id, number_id=job.params["number_id"])
    client, after, total = numbers.graph_client(number), None, 0
    while True:
        page = _graph_call(lambda: client.list_templates(number.waba_id, after=after))
        total += templates.upsert_from_meta(session, org_id=job.organization_id, waba_id=number.waba_id,
                                            items=page.templates)
        after = page.next_after
        if not after:
            return {"templates": total}
