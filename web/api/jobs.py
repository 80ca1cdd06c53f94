"""Jobs: follow any asynchronous operation (imports, exports, syncs) by its intent record."""

from flask.views import MethodView
from flask_smorest import abort

from shared.permissions import Permission
from shared.services import jobs as job_service
from web.auth import require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.jobs import JobCancelSchema, JobPageSchema, JobQueryArgsSchema, JobSchema

blp = Blueprint("jobs", __name__, description="Asynchronous operations and their progress")


@blp.route("/", strict_slashes=False)
class JobList(MethodView):
    @requires(Permission.jobs_read)
    @blp.arguments(JobQueryArgsSchema, location="query")
    @blp.response(200, JobPageSchema)
    def get(self, args):
        """List jobs, newest first; filter by kind and status; page with `cursor`."""
        after = None
        if args.get("cursor"):
            try:
                after = job_service.decode_cursor(args["cursor"])
            except (ValueError, TypeError):
                abort(422, message="cursor is not one this API produced", errors={"query": {"cursor": ["Invalid cursor."]}})
        page = job_service.list_jobs(
            get_session(),
            org_id=require_org_id(),
            kind=args.get("kind"),
            status=args.get("status"),
            limit=args["limit"],
            after=after,
        )
        return {"items": page.items, "next_cursor": page.next_cursor}


@blp.route("/<job_id>")
class JobItem(MethodView):
    @requires(Permission.jobs_read)
    @blp.response(200, JobSchema)
    def get(self, job_id):
        """One job: status, progress, result or error."""
        return job_service.get_job(get_session(), org_id=require_org_id(), job_id=job_id)


@blp.route("/<job_id>/cancel")
class JobCancel(MethodView):
    @requires(Permission.jobs_manage)
    @blp.arguments(JobCancelSchema, required=False)
    @blp.response(200, JobSchema)
    @blp.alt_response(409, description="`job_not_cancellable`: the job has finished")
    def post(self, body, job_id):
        """Cancel a queued or running job; a running job stops at its next progress report."""
        return job_service.cancel_job(
            get_session(), org_id=require_org_id(), job_id=job_id, reason=(body or {}).get("reason")
        )
