"""Contacts pipeline, CSV export: the contacts a filter matches, tags and custom attributes included,
streamed from the database to a file, handed out through an expiring signed link."""

from __future__ import annotations

import csv
import io
import tempfile
from typing import Any

from sqlalchemy.orm import Session

from shared.models import Job
from shared.services import attributes, contacts
from shared.services.contact_filters import job_filters
from shared.settings import get_settings
from shared.storage import get_storage, signed_download_token

BASE_COLUMNS = [
    "phone", "wa_id", "name", "email", "language", "lifecycle_stage", "lead_score", "tags",
    "marketing_consent", "utility_consent", "blocked", "last_seen_at", "created_at",
]


def _row(contact, attribute_keys: list[str]) -> list[Any]:
    return [
        contact.phone_e164, contact.wa_id, contact.name or "", contact.email or "", contact.language or "",
        contact.lifecycle_stage, contact.lead_score, "|".join(tag.name for tag in contact.tags),
        contact.marketing_consent.value, contact.utility_consent.value, "yes" if contact.blocked_at else "no",
        contact.last_inbound_at.isoformat() if contact.last_inbound_at else "", contact.created_at.isoformat(),
        *(contact.custom_attributes.get(key, "") for key in attribute_keys),
    ]


def run_export(session: Session, *, job: Job, progress) -> dict[str, Any]:
    org_id = job.organization_id
    spec = job_filters(job.params)
    total = contacts.count_contacts(session, org_id=org_id, spec=spec)
    attribute_keys = sorted(attributes.attribute_types(session, org_id=org_id))
    query = contacts.filtered_query(session, org_id=org_id, spec=spec).order_by("created_at", "id")
    key = f"exports/{org_id}/{job.id}.csv"
    written = 0
    with tempfile.TemporaryFile("w+b") as buffer:
        text = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
        writer = csv.writer(text)
        writer.writerow(BASE_COLUMNS + [f"attribute:{key}" for key in attribute_keys])
        for contact in session.execute(query.execution_options(yield_per=1000)).scalars():
            writer.writerow(_row(contact, attribute_keys))
            written += 1
            if written % 5000 == 0:
                progress(int(100 * written / max(1, total)), f"{written} of {total} contacts")
        text.flush()
        buffer.seek(0)
        get_storage().save(key, buffer)
        text.detach()
    filename = f"contacts-{job.created_at:%Y%m%d-%H%M%S}.csv"
    return {
        "rows": written,
        "download_url": f"{get_settings().api_v1_prefix}/files/{signed_download_token(key, filename)}",
        "expires_in_seconds": get_settings().download_link_ttl_seconds,
    }
