"""Contacts pipeline: bulk updates, CSV imports and exports, run as jobs on the maintenance pool."""

from sqlalchemy.orm import Session

from shared.models import Job, Organization
from shared.queueing import names
from shared.services import contact_export, contact_import, contacts
from shared.services.contact_filters import job_filters
from workers.base import Progress, job_task

BATCH = 1000


@job_task(names.BULK_UPDATE_CONTACTS)
def bulk_update_contacts(session: Session, job: Job, progress: Progress) -> dict:
    """Tag, untag or set the lifecycle of every contact matching a filter.

    Trigger: POST /contacts/bulk with a filter. Idempotency: the job claim; tagging twice or
    setting the same stage twice changes nothing. Retry: redelivery restarts from the top
    (the work commits with the job). Side effects: contact_tags rows, lifecycle stages.
    """
    org = session.get(Organization, job.organization_id)
    ids = contacts.matching_ids(session, org_id=org.id, spec=job_filters(job.params))
    done = 0
    for start in range(0, len(ids), BATCH):
        done += contacts.bulk_update(session, org=org, contact_ids=ids[start : start + BATCH], action=job.params)
        progress(int(100 * done / max(1, len(ids))), f"{done} of {len(ids)} contacts")
    return {"matched": len(ids), "affected": done}


@job_task(names.IMPORT_CONTACTS)
def import_contacts(session: Session, job: Job, progress: Progress) -> dict:
    """Import a CSV of contacts (see shared/services/contact_import.py).

    Trigger: POST /contacts/imports/{id}/start. Idempotency: the job claim, and the import
    itself: rows are matched by phone identity, so running the same file again changes nothing.
    Retry: redelivery restarts the file (everything commits with the job). Side effects:
    contacts, tags, consent events, the error report file.
    """
    return contact_import.run_import(session, job=job, progress=progress)


@job_task(names.EXPORT_CONTACTS)
def export_contacts(session: Session, job: Job, progress: Progress) -> dict:
    """Write the contacts matching a filter to a CSV and return an expiring download link.

    Trigger: POST /contacts/exports. Idempotency: the job claim; a rerun writes the same file
    again under the same key. Retry: redelivery. Side effects: one file in storage.
    """
    return contact_export.run_export(session, job=job, progress=progress)
