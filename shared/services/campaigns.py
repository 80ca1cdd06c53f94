"""Campaigns: drafts, their checks, and the status machine the API and beat drive.

draft → scheduled → running ⇄ paused → completed, or cancelled (from any status before the end), or
failed (a scheduled start whose pre-flight found blocking problems). The template, variables, audience
and numbers can change only before the start (409 otherwise). The slow work (resolving the audience,
dripping the ledger) is the campaigns pool's: start and resume publish `campaigns.dispatch`.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from shared.audit import audit_on_commit
from shared.db import get_owned
from shared.errors import ConflictError, InvalidInputError, NotFoundError
from shared.models import (
    Campaign,
    CampaignRecipient,
    CampaignStatus,
    Message,
    MessageStatus,
    Organization,
    RecipientState,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.models.campaigns import EDITABLE_STATUSES, FINAL_STATUSES
from shared.queueing.names import DISPATCH_CAMPAIGN
from shared.queueing.publish import enqueue_on_commit
from shared.redis_client import get_redis
from shared.services import alerts, campaign_audience, campaign_preflight, templates

EDITABLE_FIELDS = ("name", "description", "template_id", "variables", "audience", "number_ids",
                   "rate_limit_per_second", "delay_ms", "attribution_hours", "validity_hours")
SENDING_FIELDS = ("template_id", "variables", "audience", "number_ids")


class CampaignNotFoundError(NotFoundError):
    code = "campaign_not_found"


class CampaignStateError(ConflictError):
    code = "campaign_state_conflict"


class CampaignInvalidError(InvalidInputError):
    code = "campaign_invalid"


class PreflightBlockedError(InvalidInputError):
    code = "preflight_blocked"


def get_campaign(session: Session, *, org_id: uuid.UUID, campaign_id: uuid.UUID | str,
                 for_update: bool = False) -> Campaign:
    return get_owned(session, Campaign, campaign_id, org_id=org_id, not_found=CampaignNotFoundError,
                     for_update=for_update)


def list_campaigns(session: Session, *, org_id: uuid.UUID, status: str | None = None) -> list[Campaign]:
    query = select(Campaign).where(Campaign.organization_id == org_id)
    if status:
        query = query.where(Campaign.status == CampaignStatus(status))
    return list(session.execute(query.order_by(Campaign.created_at.desc(), Campaign.id)).scalars())


def create_campaign(session: Session, *, org: Organization, user_id: uuid.UUID | None,
                    fields: dict[str, Any]) -> Campaign:
    values = {k: v for k, v in fields.items() if k in EDITABLE_FIELDS}
    if not values.get("number_ids"):
        values["number_ids"] = [n.id for n in _live_numbers(session, org.id)]
    values.setdefault("audience", {"type": "all"})
    values.setdefault("variables", {})
    campaign = Campaign(organization_id=org.id, created_by_id=user_id, **_checked(session, org, values))
    session.add(campaign)
    session.flush()
    audit_on_commit(session, org_id=org.id, action="campaigns.created", subject_type="campaign",
                    subject_id=campaign.id, actor_id=user_id, data={"name": campaign.name})
    return campaign


def update_campaign(session: Session, *, org: Organization, campaign: Campaign, user_id: uuid.UUID | None,
                    changes: dict[str, Any]) -> Campaign:
    values = {k: v for k, v in changes.items() if k in EDITABLE_FIELDS}
    if campaign.status not in EDITABLE_STATUSES and set(values) & set(SENDING_FIELDS):
        raise CampaignStateError(
            f"A {campaign.status.value} campaign's template, variables, audience and numbers cannot change",
            details={"status": campaign.status.value, "fields": sorted(set(values) & set(SENDING_FIELDS))})
    if campaign.status in FINAL_STATUSES:
        raise CampaignStateError(f"A {campaign.status.value} campaign cannot change",
                                 details={"status": campaign.status.value})
    # The sending fields are checked together when one of them changes (new variables against the kept
    # template); a rename leaves them alone, even if Meta paused the template of a running campaign meanwhile.
    sending = set(values) & set(SENDING_FIELDS)
    checked = _checked(session, org, {field: getattr(campaign, field) for field in SENDING_FIELDS} | values
                       if sending else values)
    for field in values:
        setattr(campaign, field, checked[field])
    session.flush()
    audit_on_commit(session, org_id=org.id, action="campaigns.updated", subject_type="campaign",
                    subject_id=campaign.id, actor_id=user_id, data={"fields": sorted(values)})
    return campaign


def delete_campaign(session: Session, *, campaign: Campaign, user_id: uuid.UUID | None) -> None:
    if campaign.status in (CampaignStatus.running, CampaignStatus.paused):
        raise CampaignStateError("Cancel the campaign before deleting it", details={"status": campaign.status.value})
    campaign.soft_delete()
    session.flush()
    audit_on_commit(session, org_id=campaign.organization_id, action="campaigns.deleted", subject_type="campaign",
                    subject_id=campaign.id, actor_id=user_id, data={})


def _live_numbers(session: Session, org_id: uuid.UUID) -> list[WhatsAppNumber]:
    return list(session.execute(select(WhatsAppNumber).where(WhatsAppNumber.organization_id == org_id)
                                .order_by(WhatsAppNumber.created_at)).scalars())


def _checked(session: Session, org: Organization, values: dict[str, Any]) -> dict[str, Any]:
    """The sending fields, checked: an approved template of this organization, variables that fit it exactly,
    an audience that exists, numbers of this organization."""
    out = dict(values)
    if values.get("template_id") is not None:
        template = templates.get_template(session, org_id=org.id, template_id=values["template_id"])
        if template.status != "APPROVED":
            raise templates.TemplateNotApprovedError(
                f"Template {template.name!r} is {template.status}; a campaign sends only an APPROVED template",
                details={"field": "template_id", "status": template.status})
        out["template_id"] = template.id
        problems = campaign_preflight.variable_problems(session, org.id, template, values.get("variables") or {})
        if problems:
            raise CampaignInvalidError("The variables do not fit the template", details={"problems": problems})
    if "audience" in values:
        out["audience"] = campaign_audience.check_audience(session, org_id=org.id, audience=values["audience"] or {})
    if "number_ids" in values:
        out["number_ids"] = _own_numbers(session, org.id, values["number_ids"] or [])
    for field in ("rate_limit_per_second", "delay_ms"):
        if values.get(field) is not None and values[field] <= 0:
            raise CampaignInvalidError(f"{field} must be positive", details={"field": field})
    return out


def _own_numbers(session: Session, org_id: uuid.UUID, number_ids: list[Any]) -> list[uuid.UUID]:
    try:
        wanted = list(dict.fromkeys(uuid.UUID(str(n)) for n in number_ids))
    except ValueError as exc:
        raise CampaignInvalidError("number_ids are number ids", details={"field": "number_ids"}) from exc
    found = set(session.execute(select(WhatsAppNumber.id).where(
        WhatsAppNumber.organization_id == org_id, WhatsAppNumber.id.in_(wanted))).scalars())
    missing = [str(n) for n in wanted if n not in found]
    if missing:
        raise CampaignInvalidError("number_ids name numbers this organization does not have",
                                   details={"field": "number_ids", "unknown": missing})
    return wanted


# -- the status machine -------------------------------------------------------------------


def _require(campaign: Campaign, allowed: tuple[CampaignStatus, ...], action: str) -> None:
    if campaign.status not in allowed:
        raise CampaignStateError(f"A {campaign.status.value} campaign cannot be {action}",
                                 details={"status": campaign.status.value,
                                          "allowed_from": [s.value for s in allowed]})


def local_to_utc(org: Organization, at: dt.datetime) -> dt.datetime:
    """A naive time is the organization's local time; an aware one is taken as it is."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=zoneinfo.ZoneInfo(org.timezone or "UTC"))
    return at.astimezone(dt.timezone.utc)


def schedule(session: Session, *, org: Organization, campaign: Campaign, at: dt.datetime,
             user_id: uuid.UUID | None) -> Campaign:
    _require(campaign, EDITABLE_STATUSES, "scheduled")
    when = local_to_utc(org, at)
    if when <= utcnow():
        raise CampaignInvalidError("The scheduled time has passed; pick a time in the future",
                                   details={"field": "scheduled_at", "scheduled_at": when.isoformat()})
    _refuse_blocked(session, org, campaign)
    campaign.status, campaign.scheduled_at = CampaignStatus.scheduled, when
    session.flush()
    audit_on_commit(session, org_id=org.id, action="campaigns.scheduled", subject_type="campaign",
                    subject_id=campaign.id, actor_id=user_id, data={"scheduled_at": when.isoformat()})
    return campaign


def start(session: Session, *, org: Organization, campaign: Campaign, user_id: uuid.UUID | None) -> Campaign:
    """Refused with the pre-flight's blocking problems listed; else running, and the pool takes it from here."""
    _require(campaign, EDITABLE_STATUSES, "started")
    _refuse_blocked(session, org, campaign)
    campaign.status, campaign.started_at = CampaignStatus.running, utcnow()
    campaign.pause_reason = campaign.pause_message = None
    session.flush()
    _publish_dispatch(session, campaign)
    audit_on_commit(session, org_id=org.id, action="campaigns.started", subject_type="campaign",
                    subject_id=campaign.id, actor_id=user_id, data={})
    return campaign


def _refuse_blocked(session: Session, org: Organization, campaign: Campaign) -> None:
    report = campaign_preflight.preflight(session, org=org, campaign=campaign)
    if report["blocking"]:
        raise PreflightBlockedError("The campaign cannot start: " + "; ".join(p["message"] for p in report["problems"]),
                                    details={"problems": report["problems"]})


def pause(session: Session, *, campaign: Campaign, user_id: uuid.UUID | None, reason: str = "manual",
          message: str | None = None) -> Campaign:
    """Paused: nothing more is dripped, and its messages not yet taken by a dispatcher are withdrawn (their
    recipients go back to pending, so a resume sends them once)."""
    _require(campaign, (CampaignStatus.running,), "paused")
    campaign.status, campaign.paused_at = CampaignStatus.paused, utcnow()
    campaign.pause_reason, campaign.pause_message = reason, message
    withdraw_queued(session, campaign)
    session.flush()
    audit_on_commit(session, org_id=campaign.organization_id, action="campaigns.paused", subject_type="campaign",
                    subject_id=campaign.id, actor_id=user_id, data={"reason": reason})
    return campaign


def resume(session: Session, *, org: Organization, campaign: Campaign, user_id: uuid.UUID | None) -> Campaign:
    _require(campaign, (CampaignStatus.paused,), "resumed")
    campaign.status, campaign.paused_at = CampaignStatus.running, None
    campaign.pause_reason = campaign.pause_message = None
    session.flush()
    _publish_dispatch(session, campaign)
    audit_on_commit(session, org_id=org.id, action="campaigns.resumed", subject_type="campaign",
                    subject_id=campaign.id, actor_id=user_id, data={})
    return campaign


def cancel(session: Session, *, campaign: Campaign, user_id: uuid.UUID | None) -> Campaign:
    _require(campaign, (*EDITABLE_STATUSES, CampaignStatus.running, CampaignStatus.paused), "cancelled")
    campaign.status, campaign.finished_at = CampaignStatus.cancelled, utcnow()
    withdraw_queued(session, campaign)
    session.flush()
    audit_on_commit(session, org_id=campaign.organization_id, action="campaigns.cancelled", subject_type="campaign",
                    subject_id=campaign.id, actor_id=user_id, data={})
    return campaign


def withdraw_queued(session: Session, campaign: Campaign) -> int:
    """Take back the campaign's messages no dispatcher has claimed (a claimed one is locked or `sending`, and
    goes). They never left, so deleting them is safe; their ledger rows are pending again."""
    withdrawn = list(session.execute(
        delete(Message).where(Message.id.in_(
            select(Message.id).where(Message.campaign_id == campaign.id, Message.status == MessageStatus.queued)
            .with_for_update(skip_locked=True).scalar_subquery()))
        .returning(Message.id).execution_options(synchronize_session=False)).scalars())
    if withdrawn:
        session.execute(
            update(CampaignRecipient)
            .where(CampaignRecipient.campaign_id == campaign.id, CampaignRecipient.message_id.in_(withdrawn))
            .values(state=RecipientState.pending, message_id=None, attempts=CampaignRecipient.attempts - 1)
            .execution_options(synchronize_session=False))
        campaign.queued_total = Campaign.queued_total - len(withdrawn)
    return len(withdrawn)


def _publish_dispatch(session: Session, campaign: Campaign) -> None:
    enqueue_on_commit(session, DISPATCH_CAMPAIGN, campaign_id=str(campaign.id), org_id=str(campaign.organization_id),
                      chain=new_chain(campaign.id))


# -- beat ---------------------------------------------------------------------------------


def due_to_start(session: Session) -> list[tuple[uuid.UUID, uuid.UUID]]:
    rows = session.execute(select(Campaign.id, Campaign.organization_id).where(
        Campaign.status == CampaignStatus.scheduled, Campaign.scheduled_at <= utcnow())
        .execution_options(all_tenants=True))
    return [(row.id, row.organization_id) for row in rows]


def start_scheduled(session: Session, *, org_id: uuid.UUID, campaign_id: uuid.UUID) -> str:
    """Beat's start of a campaign whose time came; one whose pre-flight blocks it fails, with an alert."""
    campaign = session.execute(select(Campaign).where(Campaign.id == campaign_id).with_for_update(skip_locked=True)
                               .execution_options(all_tenants=True)).scalar_one_or_none()
    if campaign is None or campaign.status != CampaignStatus.scheduled:
        return "gone"
    org = session.get(Organization, org_id)
    try:
        start(session, org=org, campaign=campaign, user_id=None)
        return "started"
    except PreflightBlockedError as exc:
        campaign.status, campaign.finished_at = CampaignStatus.failed, utcnow()
        campaign.pause_reason, campaign.pause_message = "preflight_blocked", exc.message[:2000]
        alerts.raise_alert(session, org_id=org_id, kind="campaign_failed", subject_type="campaign",
                           subject_id=campaign.id, message=f"Campaign {campaign.name!r} could not start: {exc.message}",
                           data={"problems": exc.details.get("problems", [])})
        return "failed"


def quiet_drips(session: Session, *, older_than: dt.datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
    rows = session.execute(select(Campaign.id, Campaign.organization_id).where(
        Campaign.status == CampaignStatus.running,
        (Campaign.ticked_at.is_(None)) | (Campaign.ticked_at < older_than)).execution_options(all_tenants=True))
    return [(row.id, row.organization_id) for row in rows]


# -- one chain of drip turns per campaign ---------------------------------------------------------
CHAIN_PREFIX = "pytake:campaigns:chain:"
CHAIN_TTL_SECONDS = 3600


def new_chain(campaign_id: uuid.UUID | str) -> str:
    """A fresh chain for the campaign's turns; the chain before it ends at its next turn."""
    token = uuid.uuid4().hex
    get_redis().set(f"{CHAIN_PREFIX}{campaign_id}", token, ex=CHAIN_TTL_SECONDS)
    return token


def holds_chain(campaign_id: uuid.UUID | str, chain: str | None) -> bool:
    key = f"{CHAIN_PREFIX}{campaign_id}"
    redis = get_redis()
    if chain is None:  # a turn published without a chain (an old message): it runs only if no chain does
        return redis.get(key) is None
    if redis.set(key, chain, nx=True, ex=CHAIN_TTL_SECONDS):
        return True
    held = redis.get(key)
    if held is not None and (held.decode() if isinstance(held, bytes) else held) == chain:
        redis.expire(key, CHAIN_TTL_SECONDS)
        return True
    return False
