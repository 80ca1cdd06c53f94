"""Campaigns: bulk template sends to an audience, checked before they start and paced by the campaigns pool."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.queueing import names
from shared.services import campaign_preflight, campaign_stats, campaigns
from shared.services.jobs import create_job
from web.auth import current_org, current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.campaigns import (
    CampaignCreateSchema,
    CampaignListArgsSchema,
    CampaignSchema,
    CampaignWriteSchema,
    FunnelSchema,
    PreflightSchema,
    PreviewArgsSchema,
    PreviewItemSchema,
    ProgressSchema,
    RecipientArgsSchema,
    RecipientPageSchema,
    ScheduleSchema,
)
from web.schemas.whatsapp import JobStartedSchema

blp = Blueprint("campaigns", __name__, description="Bulk template campaigns")


def _campaign(campaign_id, *, for_update: bool = False):
    return campaigns.get_campaign(get_session(), org_id=require_org_id(), campaign_id=campaign_id,
                                  for_update=for_update)


def _user_id():
    user = current_principal().user
    return user.id if user is not None else None


@blp.route("/", strict_slashes=False)
class CampaignList(MethodView):
    @requires(Permission.campaigns_read)
    @blp.arguments(CampaignListArgsSchema, location="query")
    @blp.response(200, CampaignSchema(many=True))
    def get(self, args):
        """Every campaign, newest first (filter by status)."""
        status = args["status"].value if args["status"] else None
        return campaigns.list_campaigns(get_session(), org_id=require_org_id(), status=status)

    @requires(Permission.campaigns_manage)
    @blp.arguments(CampaignCreateSchema)
    @blp.response(201, CampaignSchema)
    def post(self, body):
        """A draft: an approved template, each placeholder's source, the audience and the numbers."""
        return campaigns.create_campaign(get_session(), org=current_org(), user_id=_user_id(), fields=body)


@blp.route("/<campaign_id>")
class CampaignItem(MethodView):
    @requires(Permission.campaigns_read)
    @blp.response(200, CampaignSchema)
    def get(self, campaign_id):
        """One campaign."""
        return _campaign(campaign_id)

    @requires(Permission.campaigns_manage)
    @blp.arguments(CampaignWriteSchema)
    @blp.response(200, CampaignSchema)
    @blp.alt_response(409, description="`campaign_state_conflict`: its template, variables, audience or numbers "
                                       "cannot change once it started")
    def patch(self, body, campaign_id):
        """Change a draft or scheduled campaign (a running one: only its name, description and caps)."""
        return campaigns.update_campaign(get_session(), org=current_org(), campaign=_campaign(campaign_id, for_update=True),
                                         user_id=_user_id(), changes=body)

    @requires(Permission.campaigns_manage)
    @blp.response(204)
    @blp.alt_response(409, description="`campaign_state_conflict`: cancel a running or paused campaign first")
    def delete(self, campaign_id):
        """Delete a campaign that is not running."""
        campaigns.delete_campaign(get_session(), campaign=_campaign(campaign_id, for_update=True), user_id=_user_id())


@blp.route("/<campaign_id>/preflight")
class CampaignPreflight(MethodView):
    @requires(Permission.campaigns_read)
    @blp.response(200, PreflightSchema)
    def get(self, campaign_id):
        """What will happen: eligible and suppressed recipients by reason, the messaging limit's room, the cost
        estimate, the ETA, and the problems that block a start."""
        return campaign_preflight.preflight(get_session(), org=current_org(), campaign=_campaign(campaign_id))


@blp.route("/<campaign_id>/preview")
class CampaignPreview(MethodView):
    @requires(Permission.campaigns_read)
    @blp.arguments(PreviewArgsSchema, location="query")
    @blp.response(200, PreviewItemSchema(many=True))
    def get(self, args, campaign_id):
        """A sample of recipients with the message each would get."""
        return campaign_preflight.preview(get_session(), org=current_org(), campaign=_campaign(campaign_id),
                                          limit=args["limit"])


def _transition(action, campaign_id, **kwargs):
    session = get_session()
    return action(session, campaign=_campaign(campaign_id, for_update=True), user_id=_user_id(), **kwargs)


@blp.route("/<campaign_id>/schedule")
class CampaignSchedule(MethodView):
    @requires(Permission.campaigns_manage)
    @blp.arguments(ScheduleSchema)
    @blp.response(200, CampaignSchema)
    @blp.alt_response(409, description="`campaign_state_conflict`: only a draft or scheduled campaign is scheduled")
    def post(self, body, campaign_id):
        """Start at a time (the organization's local time unless it carries an offset); beat starts it."""
        return _transition(campaigns.schedule, campaign_id, org=current_org(), at=body["scheduled_at"])


@blp.route("/<campaign_id>/start")
class CampaignStart(MethodView):
    @requires(Permission.campaigns_manage)
    @blp.response(202, CampaignSchema)
    @blp.alt_response(409, description="`campaign_state_conflict`: it already started, or was cancelled")
    def post(self, campaign_id):
        """Start now: refused with the pre-flight's blocking problems (422 `preflight_blocked`)."""
        return _transition(campaigns.start, campaign_id, org=current_org())


@blp.route("/<campaign_id>/pause")
class CampaignPause(MethodView):
    @requires(Permission.campaigns_manage)
    @blp.response(200, CampaignSchema)
    @blp.alt_response(409, description="`campaign_state_conflict`: only a running campaign pauses")
    def post(self, campaign_id):
        """Stop dripping; messages not yet taken by a number's dispatcher are withdrawn (sent on resume)."""
        return _transition(campaigns.pause, campaign_id)


@blp.route("/<campaign_id>/resume")
class CampaignResume(MethodView):
    @requires(Permission.campaigns_manage)
    @blp.response(202, CampaignSchema)
    @blp.alt_response(409, description="`campaign_state_conflict`: only a paused campaign resumes")
    def post(self, campaign_id):
        """Go on where it stopped: every recipient still gets the message once."""
        return _transition(campaigns.resume, campaign_id, org=current_org())


@blp.route("/<campaign_id>/cancel")
class CampaignCancel(MethodView):
    @requires(Permission.campaigns_manage)
    @blp.response(200, CampaignSchema)
    @blp.alt_response(409, description="`campaign_state_conflict`: it already ended")
    def post(self, campaign_id):
        """End it for good; recipients not sent yet are not sent."""
        return _transition(campaigns.cancel, campaign_id)


@blp.route("/<campaign_id>/progress")
class CampaignProgress(MethodView):
    @requires(Permission.campaigns_read)
    @blp.response(200, ProgressSchema)
    def get(self, campaign_id):
        """Where it stands: recipients done, in flight, pending and skipped, the pace and the ETA."""
        return campaign_stats.progress(get_session(), campaign=_campaign(campaign_id))


@blp.route("/<campaign_id>/stats")
class CampaignStats(MethodView):
    @requires(Permission.campaigns_read)
    @blp.response(200, FunnelSchema)
    def get(self, campaign_id):
        """The funnel: queued, sent, delivered, read, replied, clicked by payload, failed by Meta's code, skipped
        by reason; rates over sent."""
        return campaign_stats.funnel(get_session(), campaign=_campaign(campaign_id))


@blp.route("/<campaign_id>/recipients")
class CampaignRecipients(MethodView):
    @requires(Permission.campaigns_read)
    @blp.arguments(RecipientArgsSchema, location="query")
    @blp.response(200, RecipientPageSchema)
    def get(self, args, campaign_id):
        """Each recipient's status, reason, Meta's code, reply and click; keyset pages."""
        items, cursor = campaign_stats.recipients(get_session(), campaign=_campaign(campaign_id),
                                                  status=args["status"], limit=args["limit"], cursor=args["cursor"])
        return {"items": items, "next_cursor": cursor}


@blp.route("/<campaign_id>/recipients/export")
class CampaignRecipientsExport(MethodView):
    @requires(Permission.campaigns_read)
    @blp.response(202, JobStartedSchema)
    def post(self, campaign_id):
        """The per-recipient list as CSV, written by a job (GET /jobs/{id} gives its download link)."""
        campaign = _campaign(campaign_id)
        job, _ = create_job(get_session(), org_id=campaign.organization_id, kind="campaigns.export_recipients",
                            task_name=names.EXPORT_CAMPAIGN_RECIPIENTS, params={"campaign_id": str(campaign.id)},
                            created_by_id=_user_id())
        return {"job_id": job.id, "status": job.status.value}
