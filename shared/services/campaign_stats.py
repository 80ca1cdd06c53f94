"""A campaign's funnel, progress and per-recipient list, read from its ledger and its messages.

Per recipient: pending, skipped (with the reason), queued, sent, delivered, read, failed (with Meta's
code), or waiting to be retried (131049); replied when the recipient wrote to the number within the
campaign's attribution window after the send; clicked when they pressed one of the template's
quick-reply buttons on that message (by payload; a tap is a message from them, so it counts as a reply too).
Rates are over sent (sent, delivered and read).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import tempfile
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.errors import InvalidInputError
from shared.models import Campaign, CampaignStatus, Job
from shared.models.base import utcnow
from shared.settings import get_settings
from shared.storage import get_storage, signed_download_token

STATUSES = ("pending", "skipped", "queued", "retry", "sending", "sent", "delivered", "read", "failed", "unknown")

# One row per ledger row: its status as a recipient sees it, and whether they replied or clicked.
_RECIPIENTS = """
SELECT r.id, r.contact_id, r.phone_e164, r.number_id, r.reason, r.attempts,
       CASE WHEN r.state = 'retry' THEN r.next_attempt_at END AS next_attempt_at,
       CASE WHEN r.state IN ('pending', 'skipped', 'retry') THEN r.state::text ELSE m.status::text END AS status,
       m.id AS message_id, m.wamid, m.sent_at, m.delivered_at, m.read_at, m.failed_at, m.error_code, m.error_message,
       reply.created_at AS replied_at, click.payload AS clicked
FROM campaign_recipients r
LEFT JOIN messages m ON m.id = r.message_id
LEFT JOIN LATERAL (
  SELECT i.created_at FROM messages i
  WHERE m.sent_at IS NOT NULL AND i.conversation_id = m.conversation_id AND i.direction = 'inbound'
    AND i.created_at > m.sent_at AND i.created_at <= m.sent_at + make_interval(hours => :attribution_hours)
  ORDER BY i.created_at LIMIT 1
) reply ON true
LEFT JOIN LATERAL (
  SELECT i.content ->> 'payload' AS payload FROM messages i
  WHERE m.wamid IS NOT NULL AND i.conversation_id = m.conversation_id AND i.direction = 'inbound'
    AND i.type = 'button' AND i.context_wamid = m.wamid AND i.created_at > m.sent_at
  ORDER BY i.created_at LIMIT 1
) click ON true
WHERE r.campaign_id = :campaign_id
"""


class InvalidCursorError(InvalidInputError):
    code = "invalid_cursor"


def funnel(session: Session, *, campaign: Campaign) -> dict[str, Any]:
    rows = session.execute(text(f"""
        SELECT status, reason, error_code, replied_at IS NOT NULL AS replied, clicked, count(*) AS n
        FROM ({_RECIPIENTS}) x GROUP BY 1, 2, 3, 4, 5"""),
        {"campaign_id": campaign.id, "attribution_hours": campaign.attribution_hours}).all()
    by_status = {status: 0 for status in STATUSES}
    skipped_by_reason: dict[str, int] = {}
    failed_by_code: dict[str, int] = {}
    clicks: dict[str, int] = {}
    replied = 0
    for status, reason, code, was_replied, clicked, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        if status == "skipped":
            skipped_by_reason[reason or "unknown"] = skipped_by_reason.get(reason or "unknown", 0) + n
        if status in ("failed", "retry") and code:
            failed_by_code[code] = failed_by_code.get(code, 0) + n
        if was_replied:
            replied += n
        if clicked:
            clicks[clicked] = clicks.get(clicked, 0) + n
    sent = by_status["sent"] + by_status["delivered"] + by_status["read"]
    delivered = by_status["delivered"] + by_status["read"]
    queued = by_status["queued"] + by_status["sending"]
    clicked_total = sum(clicks.values())
    return {
        "recipients": sum(by_status.values()),
        "pending": by_status["pending"], "queued": queued, "skipped": by_status["skipped"],
        "sent": sent, "delivered": delivered, "read": by_status["read"], "replied": replied,
        "clicked": clicked_total, "failed": by_status["failed"], "unknown": by_status["unknown"],
        "waiting_retry": by_status["retry"],
        "skipped_by_reason": skipped_by_reason, "failed_by_code": failed_by_code, "clicks_by_payload": clicks,
        "rates": {name: _rate(value, sent) for name, value in (
            ("delivered", delivered), ("read", by_status["read"]), ("replied", replied), ("clicked", clicked_total))},
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def progress(session: Session, *, campaign: Campaign) -> dict[str, Any]:
    """Where a campaign stands, cheaply (the ledger's states and the messages still in flight), with an ETA."""
    counts = dict(session.execute(text("""
        SELECT r.state::text, count(*) FROM campaign_recipients r WHERE r.campaign_id = :id GROUP BY 1"""),
        {"id": campaign.id}).all())
    in_flight = session.execute(text("""
        SELECT count(*) FROM messages WHERE campaign_id = :id AND status IN ('queued', 'sending')"""),
        {"id": campaign.id}).scalar_one()
    total = sum(counts.values())
    left = counts.get("pending", 0) + in_flight
    done = total - left - counts.get("retry", 0)
    sent = done - counts.get("skipped", 0)  # messages that went (or failed): skipped recipients cost no time
    elapsed = ((campaign.finished_at or utcnow()) - campaign.started_at).total_seconds() if campaign.started_at else 0
    pace = sent / elapsed if elapsed > 0 and sent > 0 else None
    running = campaign.status == CampaignStatus.running
    return {
        "status": campaign.status.value, "pause_reason": campaign.pause_reason, "pause_message": campaign.pause_message,
        "recipients": total, "pending": counts.get("pending", 0), "in_flight": in_flight,
        "skipped": counts.get("skipped", 0), "waiting_retry": counts.get("retry", 0), "done": max(0, done),
        "percent": round(100 * done / total, 1) if total else 0.0,
        "messages_per_second": round(pace, 2) if pace else None,
        "eta_seconds": math.ceil(left / pace) if running and pace else None,
        "started_at": campaign.started_at, "finished_at": campaign.finished_at,
        "audience_resolved": campaign.audience_resolved_at is not None,
    }


def _cursor(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(uuid.UUID(json.loads(base64.urlsafe_b64decode(value.encode()))))
    except (ValueError, TypeError) as exc:
        raise InvalidCursorError("cursor is not one this API gave out", details={"cursor": value}) from exc


def recipients(session: Session, *, campaign: Campaign, status: str | None = None, limit: int = 50,
               cursor: str | None = None) -> tuple[list[dict[str, Any]], str | None]:
    """Keyset-paginated on the ledger row id; `status` filters on the recipient's status."""
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}", details={"field": "status"})
    after = _cursor(cursor)
    rows = session.execute(text(f"""
        SELECT * FROM ({_RECIPIENTS} AND (CAST(:after AS uuid) IS NULL OR r.id > CAST(:after AS uuid))) x
        WHERE CAST(:status AS text) IS NULL OR x.status = :status
        ORDER BY x.id LIMIT :limit"""),
        {"campaign_id": campaign.id, "attribution_hours": campaign.attribution_hours, "after": after,
         "status": status, "limit": limit + 1}).mappings().all()
    items = [dict(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        next_cursor = base64.urlsafe_b64encode(json.dumps(str(items[-1]["id"])).encode()).decode()
    return items, next_cursor


EXPORT_COLUMNS = ("phone", "contact_id", "status", "reason", "error_code", "error_message", "wamid", "sent_at",
                  "delivered_at", "read_at", "failed_at", "replied_at", "clicked")


def export_recipients(session: Session, *, job: Job, progress) -> dict[str, Any]:
    """The whole per-recipient list as CSV, behind an expiring signed link."""
    campaign = session.get(Campaign, uuid.UUID(job.params["campaign_id"]))
    key = f"exports/{job.organization_id}/{job.id}.csv"
    written = 0
    with tempfile.TemporaryFile("w+b") as buffer:
        text_out = io.TextIOWrapper(buffer, encoding="utf-8", newline="")
        writer = csv.writer(text_out)
        writer.writerow(EXPORT_COLUMNS)
        result = session.execute(text(f"{_RECIPIENTS} ORDER BY r.id").execution_options(yield_per=2000),
                                 {"campaign_id": campaign.id, "attribution_hours": campaign.attribution_hours})
        for row in result.mappings():
            writer.writerow([row["phone_e164"], row["contact_id"], row["status"], row["reason"] or "",
                             row["error_code"] or "", row["error_message"] or "", row["wamid"] or "",
                             *(_iso(row[c]) for c in ("sent_at", "delivered_at", "read_at", "failed_at", "replied_at")),
                             row["clicked"] or ""])
            written += 1
            if written % 10_000 == 0:
                progress(min(99, int(100 * written / max(1, campaign.recipients_total))), f"{written} recipients")
        text_out.flush()
        buffer.seek(0)
        get_storage().save(key, buffer)
        text_out.detach()
    filename = f"campaign-{campaign.id}-recipients.csv"
    settings = get_settings()
    return {"rows": written,
            "download_url": f"{settings.api_v1_prefix}/files/{signed_download_token(key, filename)}",
            "expires_in_seconds": settings.download_link_ttl_seconds}


def _iso(value: Any) -> str:
    return value.isoformat() if value is not None else ""
