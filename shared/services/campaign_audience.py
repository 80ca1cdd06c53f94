"""A campaign's audience: who it reaches, who is suppressed and why, resolved set-wise in SQL.

The same SELECT serves the pre-flight (grouped by reason, nothing written) and the start (inserted
into the recipients ledger in one INSERT ... SELECT). Audience shapes:

    {"type": "all"}
    {"type": "tags", "tags_any": [...], "tags_all": [...], "tags_none": [...]}
    {"type": "segment", "segment_id": "..."}
    {"type": "list", "import_id": "..."}   # the phones of an uploaded CSV, imported as contacts first

Each contact goes to one of the campaign's numbers, chosen by a hash of its id, so a 100,000-row
audience spreads over the numbers without a loop. Suppression reasons (first that applies):
blocked, invalid_phone, opted_out, no_opt_in (marketing), unreachable (Meta's 131026 hold on that
number, marketing), marketing_cap (Meta's 131049 within the last 24 h, marketing), missing_variable (a
placeholder's source is empty for them and has no fallback). A list also counts
rows it could not use: invalid_phone (no valid number, or no contact) and duplicate.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    func,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from shared.campaigns import variables as campaign_variables
from shared.errors import InvalidInputError
from shared.models import (
    Campaign,
    CampaignRecipient,
    ConsentState,
    Contact,
    ContactImport,
    Conversation,
    Direction,
    Job,
    Message,
    Organization,
    RecipientState,
)
from shared.phones import InvalidPhoneError, normalize_phone
from shared.services import attributes, campaign_feedback, consent, contact_filters, contact_import, segments
from shared.services.consent import MessageCategory

AUDIENCE_KEYS = {"all": (), "tags": ("tags_any", "tags_all", "tags_none"), "segment": ("segment_id",),
                 "list": ("import_id",)}
AUDIENCE_TYPES = tuple(AUDIENCE_KEYS)
MARKETING_CAP_HOURS = 24
MARKETING_CAP_LOOKBACK_HOURS = 72  # a 131049 within 24 h came for a message sent at most this long ago
PRICE_PREFIX_CHARS = 5  # "+" and 4 digits: enough to tell every calling code's market apart
REASONS = ("blocked", "invalid_phone", "opted_out", "no_opt_in", "unreachable", "marketing_cap", "duplicate",
           "missing_variable")


class InvalidAudienceError(InvalidInputError):
    code = "invalid_audience"


@dataclass
class ListRows:
    """What an uploaded list holds: the identities of its usable rows and what the others were."""

    identity_keys: list[str] = field(default_factory=list)
    invalid: int = 0
    duplicate: int = 0


def check_audience(session: Session, *, org_id: uuid.UUID, audience: dict[str, Any]) -> dict[str, Any]:
    """The audience as stored, or InvalidAudienceError naming what is wrong."""
    kind = audience.get("type", "all")
    if kind not in AUDIENCE_TYPES:
        raise InvalidAudienceError(f"audience type must be one of {', '.join(AUDIENCE_TYPES)}",
                                   details={"field": "audience.type"})
    if kind == "tags":
        names = [*(audience.get("tags_any") or []), *(audience.get("tags_all") or []),
                 *(audience.get("tags_none") or [])]
        if not (audience.get("tags_any") or audience.get("tags_all")):
            raise InvalidAudienceError("a tags audience names tags_any or tags_all",
                                       details={"field": "audience.tags_any"})
        if any(not isinstance(name, str) or not name.strip() for name in names):
            raise InvalidAudienceError("tags are non-empty names", details={"field": "audience"})
    if kind == "segment":
        segments.get_segment(session, org_id=org_id, segment_id=audience.get("segment_id") or "")
    if kind == "list":
        _import_record(session, org_id, audience.get("import_id"))
    return {"type": kind, **{k: audience[k] for k in AUDIENCE_KEYS[kind] if audience.get(k)}}


def _import_record(session: Session, org_id: uuid.UUID, import_id: Any) -> ContactImport:
    try:
        record = session.get(ContactImport, uuid.UUID(str(import_id)))
    except ValueError:
        record = None
    if record is None or record.organization_id != org_id:
        raise InvalidAudienceError("audience.import_id names no contact import of this organization",
                                   details={"field": "audience.import_id"})
    return record


def read_list(session: Session, *, org: Organization, import_id: Any) -> ListRows:
    """The phones of an uploaded list (its import's phone column), by identity; bad phones and repeats counted."""
    record = _import_record(session, org.id, import_id)
    job = session.get(Job, record.job_id) if record.job_id else None
    columns = (job.params or {}).get("columns") if job is not None else None
    phone_column = next((column for column, target in (columns or {}).items() if target == "phone"), None)
    if phone_column is None or phone_column not in record.headers:
        raise InvalidAudienceError("the list's import has not been started: map its phone column and run it first",
                                   details={"field": "audience.import_id"})
    position = record.headers.index(phone_column)
    rows, seen = ListRows(), set()
    for raw in islice(contact_import.rows_of(record), 1, None):
        if not "".join(raw).strip():
            continue
        try:
            key = normalize_phone(raw[position] if position < len(raw) else "",
                                  default_country=org.default_country).identity_key
        except InvalidPhoneError:
            rows.invalid += 1
            continue
        if key in seen:
            rows.duplicate += 1
            continue
        seen.add(key)
        rows.identity_keys.append(key)
    return rows


def _number_for(number_ids: list[uuid.UUID]) -> ColumnElement:
    """One of the campaign's numbers per contact: a stable hash of the contact's id picks it."""
    if len(number_ids) == 1:
        return literal(number_ids[0], UUID(as_uuid=True))
    slot = func.abs(func.hashtext(cast(Contact.id, String))) % len(number_ids)
    return case(*[(slot == i, literal(n, UUID(as_uuid=True))) for i, n in enumerate(number_ids)])


def _empty(source: str) -> ColumnElement[bool]:
    """SQL for "this contact has no value for `source`" (the variables module's readers, set-wise)."""
    if source in ("contact.name", "contact.first_name"):
        value = Contact.name
    elif source == "contact.email":
        value = Contact.email
    elif source == "contact.phone":
        value = Contact.phone_e164
    else:
        value = Contact.custom_attributes[source.removeprefix("attribute.")].astext
    return func.coalesce(func.btrim(value), "") == ""


def _reason(org_id: uuid.UUID, category: MessageCategory, number: ColumnElement, required: set[str]) -> ColumnElement:
    whens: list[tuple[ColumnElement[bool], str]] = [
        (Contact.blocked_at.is_not(None), "blocked"),
        (func.coalesce(Contact.wa_id, "") == "", "invalid_phone"),
    ]
    if category == MessageCategory.marketing:
        whens += [
            (Contact.marketing_consent == ConsentState.opted_out, "opted_out"),
            (Contact.marketing_consent != ConsentState.opted_in, "no_opt_in"),
            # Both as sets read once (hashed), not a probe per contact: few contacts are held, 100,000 are asked.
            (tuple_(Contact.id, number).in_(select(Conversation.contact_id, Conversation.number_id).where(
                Conversation.organization_id == org_id, Conversation.unreachable_until > func.now())),
             "unreachable"),
            (Contact.id.in_(select(Message.contact_id).where(
                Message.organization_id == org_id, Message.direction == Direction.outbound,
                Message.created_at > func.now() - text(f"interval '{MARKETING_CAP_LOOKBACK_HOURS} hours'"),
                Message.error_code == campaign_feedback.MARKETING_CAP,
                Message.failed_at > func.now() - text(f"interval '{MARKETING_CAP_HOURS} hours'"))), "marketing_cap"),
        ]
    elif category == MessageCategory.utility:
        whens.append((Contact.utility_consent == ConsentState.opted_out, "opted_out"))
    whens += [(_empty(source), "missing_variable") for source in sorted(required)]
    return case(*whens, else_=None)


def _conditions(session: Session, org: Organization, audience: dict[str, Any],
                listed: ListRows | None) -> list[ColumnElement[bool]]:
    kind = audience.get("type", "all")
    base: list[ColumnElement[bool]] = [Contact.organization_id == org.id, Contact.deleted_at.is_(None)]
    types = attributes.attribute_types(session, org_id=org.id)
    if kind == "tags":
        spec = {k: audience.get(k) for k in ("tags_any", "tags_all", "tags_none")}
        return base + contact_filters.contact_conditions(spec, org_id=org.id, attribute_types=types)
    if kind == "segment":
        segment = segments.get_segment(session, org_id=org.id, segment_id=audience["segment_id"])
        return base + contact_filters.contact_conditions(segment.filters or {}, org_id=org.id, attribute_types=types)
    if kind == "list":
        keys = listed.identity_keys if listed is not None else []
        return base + [Contact.identity_key == func.any(cast(literal(keys, ARRAY(String)), ARRAY(String)))]
    return base


def audience_select(session: Session, *, org: Organization, campaign: Campaign, template_category: str | None,
                    listed: ListRows | None = None):
    """SELECT contact_id, number_id, phone_e164, reason for every contact the campaign's audience names."""
    number = _number_for(list(campaign.number_ids))
    required = campaign_variables.required_sources(campaign.variables or {})
    reason = _reason(org.id, consent.category_of(template_category), number, required).label("reason")
    return (select(Contact.id.label("contact_id"), number.label("number_id"), Contact.phone_e164, reason)
            .where(and_(*_conditions(session, org, campaign.audience or {}, listed)))
            .execution_options(all_tenants=True))


def count_by_reason(session: Session, *, org: Organization, campaign: Campaign, template_category: str | None
                    ) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """Without writing anything: ({"eligible" or reason: count}, {number id: eligible},
    {phone prefix ("+" and 4 digits): eligible}, the last for the cost estimate)."""
    listed = listed_rows(session, org, campaign)
    audience = audience_select(session, org=org, campaign=campaign, template_category=template_category,
                               listed=listed).subquery()
    counts = {reason: 0 for reason in ("eligible", *REASONS)}
    per_number: dict[str, int] = {str(n): 0 for n in campaign.number_ids}
    per_prefix: dict[str, int] = {}
    prefix = func.left(audience.c.phone_e164, PRICE_PREFIX_CHARS)
    rows = session.execute(select(audience.c.reason, audience.c.number_id, prefix, func.count())
                           .group_by(audience.c.reason, audience.c.number_id, prefix))
    for reason, number_id, phone_prefix, count in rows:
        counts[reason or "eligible"] += count
        if reason is None:
            per_number[str(number_id)] += count
            per_prefix[phone_prefix] = per_prefix.get(phone_prefix, 0) + count
    if listed is not None:
        matched = sum(counts.values())
        counts["invalid_phone"] += listed.invalid + max(0, len(listed.identity_keys) - matched)
        counts["duplicate"] += listed.duplicate
    return counts, per_number, per_prefix


def listed_rows(session: Session, org: Organization, campaign: Campaign) -> ListRows | None:
    audience = campaign.audience or {}
    return read_list(session, org=org, import_id=audience.get("import_id")) if audience.get("type") == "list" else None


def resolve_into_ledger(session: Session, *, org: Organization, campaign: Campaign,
                        template_category: str | None) -> tuple[int, int]:
    """Write the ledger once (a rerun adds nothing: unique per campaign and contact); (recipients, suppressed).

    Suppressed contacts get a `skipped` row with their reason, so the recipients list says why; list rows
    with no contact (invalid, duplicate) are only counted.
    """
    listed = listed_rows(session, org, campaign)
    audience = audience_select(session, org=org, campaign=campaign, template_category=template_category,
                               listed=listed).subquery()
    state = case((audience.c.reason.is_(None), literal(RecipientState.pending.value)),
                 else_=literal(RecipientState.skipped.value))
    rows = select(literal(campaign.id, UUID(as_uuid=True)), audience.c.contact_id, audience.c.number_id,
                  audience.c.phone_e164, cast(state, CampaignRecipient.__table__.c.state.type), audience.c.reason,
                  func.now()).order_by(audience.c.contact_id)
    session.execute(insert(CampaignRecipient).from_select(
        ["campaign_id", "contact_id", "number_id", "phone_e164", "state", "reason", "next_attempt_at"], rows,
    ).on_conflict_do_nothing(index_elements=["campaign_id", "contact_id"]))
    totals = session.execute(
        select(func.count(), func.count().filter(CampaignRecipient.state == RecipientState.skipped))
        .where(CampaignRecipient.campaign_id == campaign.id)).one()
    extra = (listed.invalid + listed.duplicate) if listed is not None else 0
    return totals[0], totals[1] + extra
