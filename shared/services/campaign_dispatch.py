"""The campaigns pool's drip: one turn of a running campaign at a time.

A turn locks the campaign row (`FOR UPDATE SKIP LOCKED`: a second turn of the same campaign gives way),
stops the campaign when it must (the organization, the template or a number can no longer send: paused
with an alert), resolves the audience into the ledger on its first turn, then tops up each number's
backlog of queued campaign messages to a few seconds of its pace. The ledger rows it takes are claimed
`FOR UPDATE SKIP LOCKED`, checked again (consent, block, 131026 hold: skipped with the reason), rendered
per recipient, and turned into messages in the same transaction that marks them `queued` with their
message id: a recipient's message exists exactly when its row says so, so a worker killed anywhere
leaves either both or neither, and nobody is sent twice. The shared sending takes the messages from
there as bulk traffic, behind agent, bot and system replies on the same number.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from shared.campaigns import variables as campaign_variables
from shared.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    Contact,
    Direction,
    Message,
    MessageStatus,
    MessageTemplate,
    Organization,
    RecipientState,
    SenderType,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.ratelimit import pace_factor
from shared.services import (
    alerts,
    campaign_audience,
    campaign_content,
    campaign_preflight,
    campaigns,
    consent,
    conversations,
    sending,
    send_context,
    templates,
)
from shared.settings import get_settings
from shared.whatsapp.templates import TemplateDefinitionError, TemplateVariablesError

log = structlog.get_logger(__name__)

BACKLOG_SECONDS = 3.0  # each number keeps this much of its pace queued ahead of its dispatcher
MIN_BACKLOG = 20
MAX_PER_TURN = 1_000  # per number and turn: one turn's statements stay short


@dataclass
class Turn:
    outcome: str  # running, paused, completed, resolved, busy, or the campaign's status when it does not run
    queued: int = 0
    skipped: int = 0

    @property
    def again(self) -> bool:
        """Another turn follows: the campaign runs (`busy`: a request held its row for a moment)."""
        return self.outcome in ("running", "resolved", "busy")


def run_turn(session: Session, *, campaign_id: uuid.UUID | str) -> Turn:
    campaign = session.execute(
        select(Campaign).where(Campaign.id == uuid.UUID(str(campaign_id)))
        .with_for_update(skip_locked=True).execution_options(all_tenants=True)).scalar_one_or_none()
    if campaign is None:
        return Turn("busy")
    if campaign.status != CampaignStatus.running:
        return Turn(campaign.status.value)
    now = utcnow()
    org = session.get(Organization, campaign.organization_id)
    template = session.get(MessageTemplate, campaign.template_id) if campaign.template_id else None
    numbers = {n.id: n for n in session.execute(select(WhatsAppNumber).where(
        WhatsAppNumber.id.in_(list(campaign.number_ids))).execution_options(include_deleted=True)).scalars()}
    stop = _stop(org, template, numbers)
    if stop is not None:
        return _pause_for(session, campaign, *stop)
    if campaign.audience_resolved_at is None:
        _resolve(session, org, campaign, template, list(numbers.values()))
        return Turn("resolved")
    _expire_retries(session, campaign, now)
    if campaign.limit_room is not None and campaign.queued_total >= campaign.limit_room:
        return _pause_for(session, campaign, "messaging_limit",
                          "The messaging limit's room for the next 24 h is used up; resume when it has room again")
    backlog = _backlog(session, campaign.id)
    turn = Turn("running")
    budget = _cap_budget(campaign, now)
    if campaign.limit_room is not None:  # never past the messaging limit's room, even within one turn
        budget = min(budget if budget is not None else MAX_PER_TURN, campaign.limit_room - campaign.queued_total)
    for number in numbers.values():
        want = max(MIN_BACKLOG, int(number.throughput_mps * pace_factor(str(number.id)) * BACKLOG_SECONDS))
        room = min(MAX_PER_TURN, want - backlog.get(number.id, 0), budget if budget is not None else MAX_PER_TURN)
        if room <= 0:
            continue
        queued, skipped = _drip(session, org, campaign, template, number, room, now)
        turn.queued, turn.skipped = turn.queued + queued, turn.skipped + skipped
        if budget is not None:
            budget -= queued
    campaign.ticked_at = now
    campaign.queued_total = Campaign.queued_total + turn.queued
    if turn.queued == 0 and not backlog and _finished(session, campaign.id):
        campaign.status, campaign.finished_at = CampaignStatus.completed, now
        turn.outcome = "completed"
    session.flush()
    return turn


def _stop(org: Organization, template: MessageTemplate | None,
          numbers: dict[uuid.UUID, WhatsAppNumber]) -> tuple[str, str] | None:
    stop = campaign_preflight.org_stop(org)
    if stop is not None:
        return stop
    if template is None or template.deleted_at is not None or template.status != "APPROVED":
        status = template.status if template is not None else "deleted"
        return "template_unavailable", f"The campaign's template is {status}: sending stopped"
    if not numbers:
        return "number_deleted", "The campaign's numbers no longer exist"
    for number in numbers.values():
        stop = campaign_preflight.number_stop(number)
        if stop is not None:
            return stop
    return None


def _pause_for(session: Session, campaign: Campaign, reason: str, message: str) -> Turn:
    campaigns.pause(session, campaign=campaign, user_id=None, reason=reason, message=message)
    alerts.raise_alert(session, org_id=campaign.organization_id, kind="campaign_paused", subject_type="campaign",
                       subject_id=campaign.id, message=f"Campaign {campaign.name!r} paused: {message}",
                       data={"reason": reason})
    log.info("campaigns.paused", campaign_id=str(campaign.id), reason=reason)
    return Turn("paused")


def _resolve(session: Session, org: Organization, campaign: Campaign, template: MessageTemplate,
             numbers: list[WhatsAppNumber]) -> None:
    started = utcnow()
    total, suppressed = campaign_audience.resolve_into_ledger(session, org=org, campaign=campaign,
                                                              template_category=template.category)
    campaign.recipients_total, campaign.suppressed_total = total, suppressed
    _, limit = campaign_preflight.tier_limit(numbers)
    if limit is not None and template.category.upper() != "AUTHENTICATION":
        campaign.limit_room = max(0, limit - campaign_preflight.reached_last_24h(session, org.id))
    campaign.audience_resolved_at = campaign.ticked_at = utcnow()
    session.flush()
    log.info("campaigns.resolved", campaign_id=str(campaign.id), recipients=total, suppressed=suppressed,
             seconds=round((utcnow() - started).total_seconds(), 3))


def _expire_retries(session: Session, campaign: Campaign, now: dt.datetime) -> None:
    """Recipients waiting on Meta's marketing cap past the campaign's validity are not tried again."""
    if campaign.started_at is None or now < campaign.started_at + dt.timedelta(hours=campaign.validity_hours):
        return
    session.execute(update(CampaignRecipient).where(
        CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.state == RecipientState.retry)
        .values(state=RecipientState.skipped, reason="expired").execution_options(synchronize_session=False))


def _backlog(session: Session, campaign_id: uuid.UUID) -> dict[uuid.UUID, int]:
    rows = session.execute(select(Message.number_id, func.count()).where(
        Message.campaign_id == campaign_id, Message.status.in_((MessageStatus.queued, MessageStatus.sending)))
        .group_by(Message.number_id).execution_options(all_tenants=True))
    return {number_id: count for number_id, count in rows}


def _cap_budget(campaign: Campaign, now: dt.datetime) -> int | None:
    """Messages the campaign's own caps (rate, delay between messages) allow since its last turn."""
    caps = [c for c in (campaign.rate_limit_per_second, 1000 / campaign.delay_ms if campaign.delay_ms else None) if c]
    if not caps:
        return None
    since = (now - campaign.ticked_at).total_seconds() if campaign.ticked_at else 1.0
    return max(1, int(min(caps) * min(since, 2 * get_settings().campaign_tick_seconds)))


def _finished(session: Session, campaign_id: uuid.UUID) -> bool:
    """Nothing left to drip now or later (recipients waiting on a retry keep the campaign running)."""
    return session.execute(select(CampaignRecipient.id).where(
        CampaignRecipient.campaign_id == campaign_id,
        CampaignRecipient.state.in_((RecipientState.pending, RecipientState.retry))).limit(1)).first() is None


_CLAIM = text("""
SELECT r.id, r.contact_id, r.attempts, cv.unreachable_until
FROM campaign_recipients r
LEFT JOIN conversations cv ON cv.number_id = r.number_id AND cv.contact_id = r.contact_id
WHERE r.campaign_id = :campaign_id AND r.number_id = :number_id AND r.state IN ('pending', 'retry')
  AND r.next_attempt_at <= :now
ORDER BY r.next_attempt_at, r.id
LIMIT :limit
FOR UPDATE OF r SKIP LOCKED
""")


def _drip(session: Session, org: Organization, campaign: Campaign, template: MessageTemplate,
          number: WhatsAppNumber, limit: int, now: dt.datetime) -> tuple[int, int]:
    """Up to `limit` of this number's due recipients become queued messages (or skipped rows); (queued, skipped)."""
    claimed = session.execute(_CLAIM, {"campaign_id": campaign.id, "number_id": number.id, "now": now,
                                       "limit": limit}).all()
    if not claimed:
        return 0, 0
    people = {c.id: c for c in session.execute(select(Contact).where(
        Contact.id.in_([row.contact_id for row in claimed])).execution_options(include_deleted=True)).scalars()}
    category = consent.category_of(template.category)
    definition = templates.definition_of(template)
    compiled = campaign_variables.compile_mapping(campaign.variables or {})
    going: list[tuple[Any, dict[str, Any]]] = []
    skipped: dict[uuid.UUID, str] = {}
    for row in claimed:
        contact = people[row.contact_id]
        verdict = consent.eligibility(contact, category, unreachable_until=row.unreachable_until, now=now)
        if not verdict.eligible:
            skipped[row.id] = verdict.reason or "ineligible"
            continue
        try:
            content = campaign_content.content_for(template, definition, compiled, contact)
        except (campaign_variables.MissingVariable, TemplateVariablesError, TemplateDefinitionError):
            skipped[row.id] = "missing_variable"
            continue
        going.append((row, content))
    if skipped:
        session.execute(text("""
            UPDATE campaign_recipients r SET state = 'skipped', reason = s.reason, updated_at = :now
            FROM unnest(CAST(:ids AS uuid[]), CAST(:reasons AS text[])) AS s(id, reason)
            WHERE r.id = s.id"""), {"ids": [str(i) for i in skipped], "reasons": list(skipped.values()), "now": now})
    if going:
        _queue(session, org, campaign, template, number, going, now)
    return len(going), len(skipped)


def _queue(session: Session, org: Organization, campaign: Campaign, template: MessageTemplate,
           number: WhatsAppNumber, going: list[tuple[Any, dict[str, Any]]], now: dt.datetime) -> None:
    """The messages, their conversations opened where new, and their ledger rows marked, in this transaction."""
    contact_ids = [row.contact_id for row, _ in going]
    threads = conversations.open_many(session, org_id=org.id, number_id=number.id, contact_ids=contact_ids)
    rows, marks = [], []
    for row, content in going:
        message_id = uuid.uuid4()
        rows.append({
            "id": message_id, "organization_id": org.id, "conversation_id": threads[row.contact_id],
            "contact_id": row.contact_id, "number_id": number.id, "direction": Direction.outbound,
            "type": "template", "content": content, "status": MessageStatus.queued, "queued_at": now,
            "next_attempt_at": now, "sender_type": SenderType.campaign, "campaign_id": campaign.id,
            "template_id": template.id,
            "idempotency_key": f"campaign:{campaign.id}:{row.contact_id}:{row.attempts + 1}",
            **send_context.UNSET_COLUMNS,
        })
        marks.append((row.id, message_id))
    session.execute(insert(Message), rows, execution_options={"synchronize_session": False})
    session.execute(text("""
        UPDATE campaign_recipients r SET state = 'queued', message_id = m.message_id, attempts = r.attempts + 1,
               updated_at = :now
        FROM unnest(CAST(:ids AS uuid[]), CAST(:messages AS uuid[])) AS m(id, message_id)
        WHERE r.id = m.id"""), {"ids": [str(i) for i, _ in marks], "messages": [str(m) for _, m in marks], "now": now})
    sending.arm_on_commit(session, number_id=number.id, org_id=org.id)

