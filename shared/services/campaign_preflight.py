"""A campaign's pre-flight: what will happen before anything is sent.

Recipients counted as eligible and as suppressed by reason (the same SELECT the start writes into the
ledger), the messaging-limit tier's room for the next 24 h, the cost by Meta's pricing category and the
recipients' markets (shared/campaigns/pricing.py, a dated table), the ETA at the numbers' pace, and
the problems that block a start. Nothing is written.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.campaigns import pricing
from shared.campaigns import variables as campaign_variables
from shared.models import (
    Campaign,
    Contact,
    Direction,
    Message,
    MessageTemplate,
    Organization,
    SubscriptionStatus,
    WhatsAppNumber,
)
from shared.models.base import utcnow
from shared.services import attributes, campaign_audience, campaign_content, templates
from shared.whatsapp import templates as template_rules

# Unique users a portfolio may reach outside a service window per moving 24 h (None: unlimited).
TIER_LIMITS = {"TIER_50": 50, "TIER_250": 250, "TIER_1K": 1_000, "TIER_2K": 2_000, "TIER_10K": 10_000,
               "TIER_100K": 100_000, "TIER_UNLIMITED": None, "UNLIMITED": None}


def _problem(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "message": message, **details}


def preflight(session: Session, *, org: Organization, campaign: Campaign) -> dict[str, Any]:
    problems: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    template = session.get(MessageTemplate, campaign.template_id) if campaign.template_id else None
    problems += _template_problems(session, org, campaign, template)
    numbers = _numbers(session, org.id, campaign.number_ids)
    problems += _number_problems(campaign, numbers)
    problems += _org_problems(org)
    category = template.category if template is not None else None

    if numbers and campaign.audience is not None:
        by_reason, per_number, by_prefix = campaign_audience.count_by_reason(
            session, org=org, campaign=campaign, template_category=category)
    else:
        by_reason, per_number, by_prefix = {"eligible": 0}, {}, {}
    eligible = by_reason.pop("eligible", 0)
    suppressed = sum(by_reason.values())
    if eligible == 0:
        problems.append(_problem("no_eligible_recipients", "No recipient of this audience can receive this template"))

    limit = _messaging_limit(session, org.id, numbers)
    if numbers and limit["tier"] is None:
        warnings.append(_problem("messaging_limit_unknown", "Meta has not reported the numbers' messaging limit yet "
                                 "(sync the number): the campaign cannot check it"))
    if limit["room"] is not None and eligible > limit["room"]:
        warnings.append(_problem(
            "messaging_limit", f"The messaging limit leaves room for {limit['room']} of {eligible} recipients in the "
                               "next 24 h: the campaign pauses when it is reached",
            room=limit["room"], eligible=eligible))

    pace = _pace(campaign, numbers)
    category_name = (category or "marketing").lower()
    cost = pricing.estimate_by_prefix((prefix, category_name, count) for prefix, count in by_prefix.items())
    return {
        "campaign_id": str(campaign.id),
        "blocking": bool(problems),
        "problems": problems,
        "warnings": warnings,
        "recipients": {"total": eligible + suppressed, "eligible": eligible, "suppressed": suppressed,
                       "suppressed_by_reason": by_reason},
        "per_number": per_number,
        "messaging_limit": limit,
        "cost": cost,
        "throughput_per_second": pace,
        "eta_seconds": math.ceil(eligible / pace) if pace else None,
        "checked_at": utcnow().isoformat(),
    }


def _template_problems(session: Session, org: Organization, campaign: Campaign,
                       template: MessageTemplate | None) -> list[dict[str, Any]]:
    if template is None or template.deleted_at is not None:
        return [_problem("no_template", "Choose an approved template", field="template_id")]
    problems = []
    if template.status != "APPROVED":
        problems.append(_problem("template_not_approved", f"Template {template.name!r} is {template.status}",
                                 field="template_id", status=template.status))
    for issue in variable_problems(session, org.id, template, campaign.variables or {}):
        problems.append(_problem("invalid_variables", issue["message"], field=f"variables.{issue['field']}"))
    return problems


def variable_problems(session: Session, org_id: uuid.UUID, template: MessageTemplate,
                      mapping: dict[str, Any]) -> list[dict[str, Any]]:
    """Every way the variables do not fit the template (placeholders missing or extra, unknown sources or
    attributes); empty when they fit."""
    keys = set(attributes.attribute_types(session, org_id=org_id))
    return campaign_variables.check_mapping(templates.definition_of(template), mapping, attribute_keys=keys)


def _numbers(session: Session, org_id: uuid.UUID, number_ids: list[uuid.UUID]) -> list[WhatsAppNumber]:
    if not number_ids:
        return []
    return list(session.execute(select(WhatsAppNumber).where(
        WhatsAppNumber.organization_id == org_id, WhatsAppNumber.id.in_(list(number_ids)))).scalars())


def number_stop(number: WhatsAppNumber) -> tuple[str, str] | None:
    """Why a campaign may not send on this number now (Meta's quality or a pause), or None."""
    label = number.display_phone_number
    if number.deleted_at is not None:
        return "number_deleted", f"Number {label} was deleted"
    if number.sends_paused_at is not None:
        return "number_paused", f"Number {label}'s sends are paused: {number.sends_paused_reason or 'see alerts'}"
    if (number.quality_rating or "").upper() == "RED":
        return "quality_red", f"Number {label}'s quality is RED: campaigns on it wait until it recovers"
    return None


def _number_problems(campaign: Campaign, numbers: list[WhatsAppNumber]) -> list[dict[str, Any]]:
    if not numbers:
        return [_problem("no_numbers", "Choose at least one WhatsApp number", field="number_ids")]
    problems = []
    found = {n.id for n in numbers}
    for missing in [n for n in campaign.number_ids if n not in found]:
        problems.append(_problem("number_deleted", f"Number {missing} no longer exists", number_id=str(missing)))
    for number in numbers:
        stop = number_stop(number)
        if stop is not None:
            problems.append(_problem(stop[0], stop[1], number_id=str(number.id)))
    return problems


def org_stop(org: Organization) -> tuple[str, str] | None:
    if org.suspended_at is not None:
        return "organization_suspended", "This organization is suspended"
    if org.subscription_status == SubscriptionStatus.expired:
        return "trial_expired", "The free trial has ended: choose a plan to send campaigns"
    return None


def _org_problems(org: Organization) -> list[dict[str, Any]]:
    stop = org_stop(org)
    return [_problem(*stop)] if stop else []


def tier_limit(numbers: list[WhatsAppNumber]) -> tuple[str | None, int | None]:
    """The portfolio's tier (Meta shares it between a business's numbers): the highest any number reports;
    (None, None) while Meta has told us none (a number not synced yet)."""
    tiers = [n.messaging_limit_tier.upper() for n in numbers if n.messaging_limit_tier]
    known = [t for t in tiers if t in TIER_LIMITS]
    if not known:
        return (tiers[0] if tiers else None), None
    if any(TIER_LIMITS[t] is None for t in known):
        return next(t for t in known if TIER_LIMITS[t] is None), None
    best = max(known, key=lambda t: TIER_LIMITS[t] or 0)
    return best, TIER_LIMITS[best]


def reached_last_24h(session: Session, org_id: uuid.UUID) -> int:
    """Unique users this organization's business-initiated templates reached in the last 24 h."""
    since = utcnow() - dt.timedelta(hours=24)
    return session.execute(
        select(func.count(func.distinct(Message.contact_id))).where(
            Message.organization_id == org_id, Message.direction == Direction.outbound,
            Message.created_at >= since, Message.type == "template", Message.sent_at.is_not(None))
    ).scalar_one()


def _messaging_limit(session: Session, org_id: uuid.UUID, numbers: list[WhatsAppNumber]) -> dict[str, Any]:
    tier, limit = tier_limit(numbers)
    used = reached_last_24h(session, org_id)
    return {"tier": tier, "limit": limit, "used_last_24h": used,
            "room": None if limit is None else max(0, limit - used)}


def _pace(campaign: Campaign, numbers: list[WhatsAppNumber]) -> float:
    """Messages per second the campaign goes at: its numbers' pace, under its own caps."""
    pace = float(sum(n.throughput_mps for n in numbers if number_stop(n) is None))
    for cap in (campaign.rate_limit_per_second, 1000 / campaign.delay_ms if campaign.delay_ms else None):
        if cap:
            pace = min(pace, float(cap))
    return pace


def preview(session: Session, *, org: Organization, campaign: Campaign, limit: int = 5) -> list[dict[str, Any]]:
    """A sample of the audience's eligible recipients, each with the message it would get (or why not)."""
    template = session.get(MessageTemplate, campaign.template_id) if campaign.template_id else None
    if template is None or not campaign.number_ids:
        return []
    audience = campaign_audience.audience_select(
        session, org=org, campaign=campaign, template_category=template.category,
        listed=campaign_audience.listed_rows(session, org, campaign)).subquery()
    rows = session.execute(select(Contact, audience.c.number_id).join(audience, audience.c.contact_id == Contact.id)
                           .where(audience.c.reason.is_(None)).order_by(Contact.created_at, Contact.id)
                           .limit(limit)).all()
    definition = templates.definition_of(template)
    sample = []
    for contact, number_id in rows:
        item = {"contact_id": contact.id, "phone": contact.phone_e164, "name": contact.name, "number_id": number_id,
                "content": None, "text": None, "problem": None}
        try:
            item["content"] = campaign_content.content_for(template, definition, campaign.variables or {}, contact)
            item["text"] = campaign_content.body_text(definition, item["content"])
        except campaign_variables.MissingVariable as exc:
            item["problem"] = f"missing_variable: {exc}"
        except (template_rules.TemplateVariablesError, template_rules.TemplateDefinitionError) as exc:
            item["problem"] = f"invalid_variables: {exc.message}"
        sample.append(item)
    return sample
