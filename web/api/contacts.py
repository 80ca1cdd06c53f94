"""Contacts: the people an organization talks to, their consent, and bulk work on them."""

from flask.views import MethodView

from shared.models import ConsentAction
from shared.permissions import Permission
from shared.services import consent, contacts
from shared.services.jobs import create_job
from shared.queueing import names
from web.auth import current_org, current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.contacts import (
    BulkActionSchema,
    BulkResultSchema,
    ConsentChangeSchema,
    ConsentEventSchema,
    ContactCreateSchema,
    ContactPageSchema,
    ContactQueryArgsSchema,
    ContactSchema,
    ContactStatsSchema,
    ContactUpdateSchema,
    EligibilityQueryArgsSchema,
    EligibilitySchema,
    LeadScoreSchema,
)

blp = Blueprint("contacts", __name__, description="Contacts, consent, tags in bulk")


def _contact(contact_id):
    return contacts.get_contact(get_session(), org_id=require_org_id(), contact_id=contact_id)


@blp.route("/", strict_slashes=False)
class ContactList(MethodView):
    @requires(Permission.contacts_read)
    @blp.arguments(ContactQueryArgsSchema, location="query")
    @blp.response(200, ContactPageSchema)
    def get(self, args):
        """Filter, sort and page through contacts (keyset pagination: pass `next_cursor` as `cursor`)."""
        sort, limit, cursor = args.pop("sort"), args.pop("limit"), args.pop("cursor")
        page = contacts.list_contacts(
            get_session(), org_id=require_org_id(), spec=args, sort=sort, limit=limit, cursor=cursor
        )
        return {"items": page.items, "next_cursor": page.next_cursor}

    @requires(Permission.contacts_write)
    @blp.arguments(ContactCreateSchema)
    @blp.response(201, ContactSchema)
    @blp.alt_response(409, description="`contact_exists`: the phone is another contact's")
    def post(self, body):
        """Create a contact; the phone is normalized to E.164 and must not belong to another contact."""
        tag_names = body.pop("tags")
        return contacts.create_contact(get_session(), org=current_org(), phone=body.pop("phone"), tag_names=tag_names, **body)


@blp.route("/bulk")
class ContactBulk(MethodView):
    @requires(Permission.contacts_write)
    @blp.arguments(BulkActionSchema)
    @blp.response(200, BulkResultSchema)
    @blp.alt_response(202, schema=BulkResultSchema, description="Started as a job (filter)")
    def post(self, body):
        """Tag, untag or set the lifecycle stage of contacts: up to 1000 ids at once, or every match of a filter as a job."""
        session, org = get_session(), current_org()
        if "filters" in body:
            job, _ = create_job(
                session, org_id=org.id, kind="contacts.bulk_update", task_name=names.BULK_UPDATE_CONTACTS,
                params={key: value for key, value in body.items() if key != "ids"},
                created_by_id=current_principal().user.id,
            )
            return {"affected": None, "job_id": job.id}, 202
        return {"affected": contacts.bulk_update(session, org=org, contact_ids=body["ids"], action=body), "job_id": None}


@blp.route("/<contact_id>")
class ContactItem(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, ContactSchema)
    def get(self, contact_id):
        """One contact."""
        return _contact(contact_id)

    @requires(Permission.contacts_write)
    @blp.arguments(ContactUpdateSchema)
    @blp.response(200, ContactSchema)
    @blp.alt_response(409, description="`contact_exists`: the phone is another contact's")
    def patch(self, body, contact_id):
        """Update profile, phone, lifecycle stage or custom attributes (merged; null removes one)."""
        return contacts.update_contact(get_session(), org=current_org(), contact=_contact(contact_id), changes=body)

    @requires(Permission.contacts_write)
    @blp.response(204)
    def delete(self, contact_id):
        """Delete a contact (kept for the record, gone from every list)."""
        contacts.delete_contact(get_session(), contact=_contact(contact_id))


def _consent_change(contact_id, body, action):
    principal = current_principal()
    contact = _contact(contact_id)
    consent.record_consent(
        get_session(), contact=contact, action=action, scope=body["scope"], source=body["source"],
        actor_user_id=principal.user.id, actor=principal.user.email, evidence=body.get("evidence"),
    )
    return contact


@blp.route("/<contact_id>/opt-in")
class ContactOptIn(MethodView):
    @requires(Permission.contacts_write)
    @blp.arguments(ConsentChangeSchema)
    @blp.response(200, ContactSchema)
    def post(self, body, contact_id):
        """Record an opt-in (scope marketing / utility / all) with its source and evidence."""
        return _consent_change(contact_id, body, ConsentAction.opt_in)


@blp.route("/<contact_id>/opt-out")
class ContactOptOut(MethodView):
    @requires(Permission.contacts_write)
    @blp.arguments(ConsentChangeSchema)
    @blp.response(200, ContactSchema)
    def post(self, body, contact_id):
        """Record an opt-out; marketing sends to this contact stop at once."""
        return _consent_change(contact_id, body, ConsentAction.opt_out)


@blp.route("/<contact_id>/consent")
class ContactConsentHistory(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, ConsentEventSchema(many=True))
    def get(self, contact_id):
        """Every opt-in and opt-out, newest first: who, when, how, and the evidence."""
        return consent.consent_history(get_session(), contact=_contact(contact_id))


@blp.route("/<contact_id>/eligibility")
class ContactEligibility(MethodView):
    @requires(Permission.contacts_read)
    @blp.arguments(EligibilityQueryArgsSchema, location="query")
    @blp.response(200, EligibilitySchema)
    def get(self, args, contact_id):
        """May we send this contact a marketing / utility / service message now, and if not, why."""
        verdict = consent.eligibility(_contact(contact_id), args["category"])
        return {"category": args["category"].value, **verdict.__dict__}


@blp.route("/<contact_id>/block")
class ContactBlock(MethodView):
    @requires(Permission.contacts_write)
    @blp.response(200, ContactSchema)
    def post(self, contact_id):
        """Block: their messages are kept but not routed, and nothing is sent to them."""
        return contacts.set_blocked(get_session(), contact=_contact(contact_id), blocked=True)


@blp.route("/<contact_id>/unblock")
class ContactUnblock(MethodView):
    @requires(Permission.contacts_write)
    @blp.response(200, ContactSchema)
    def post(self, contact_id):
        """Unblock."""
        return contacts.set_blocked(get_session(), contact=_contact(contact_id), blocked=False)


@blp.route("/<contact_id>/lead-score")
class ContactLeadScore(MethodView):
    @requires(Permission.contacts_write)
    @blp.arguments(LeadScoreSchema)
    @blp.response(200, ContactSchema)
    def post(self, body, contact_id):
        """Add points (`delta`) or set the score (`value`)."""
        return contacts.adjust_lead_score(get_session(), contact=_contact(contact_id), **body)


@blp.route("/<contact_id>/stats")
class ContactStats(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, ContactStatsSchema)
    def get(self, contact_id):
        """Engagement: messages in and out, first and last contact each way."""
        return _contact(contact_id)
