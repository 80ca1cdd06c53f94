"""WhatsApp numbers an organization sends from."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.queueing.names import SYNC_NUMBER
from shared.services import numbers
from shared.services.jobs import create_job
from web.auth import current_org, current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.whatsapp import JobStartedSchema, NumberCreateSchema, NumberSchema, NumberUpdateSchema

blp = Blueprint("numbers", __name__, description="WhatsApp numbers and their credentials (write-only)")


def _number(number_id):
    return numbers.get_number(get_session(), org_id=require_org_id(), number_id=number_id)


@blp.route("/", strict_slashes=False)
class NumberList(MethodView):
    @requires(Permission.numbers_read)
    @blp.response(200, NumberSchema(many=True))
    def get(self):
        """The organization's numbers, with quality rating, tier and status."""
        return numbers.list_numbers(get_session(), org_id=require_org_id())

    @requires(Permission.numbers_manage)
    @blp.arguments(NumberCreateSchema)
    @blp.response(201, NumberSchema)
    @blp.alt_response(409, description="`phone_number_id_taken`: the number is connected already")
    def post(self, body):
        """Connect a number (within the plan's limit). The access token and app secret are stored encrypted."""
        return numbers.create_number(get_session(), org=current_org(), **body)


@blp.route("/<number_id>")
class NumberItem(MethodView):
    @requires(Permission.numbers_read)
    @blp.response(200, NumberSchema)
    def get(self, number_id):
        """One number."""
        return _number(number_id)

    @requires(Permission.numbers_manage)
    @blp.arguments(NumberUpdateSchema)
    @blp.response(200, NumberSchema)
    def patch(self, body, number_id):
        """Change settings or replace credentials (they are never shown again)."""
        return numbers.update_number(get_session(), number=_number(number_id), changes=body)

    @requires(Permission.numbers_manage)
    @blp.response(204)
    def delete(self, number_id):
        """Disconnect a number; its webhooks are then recorded as unroutable."""
        numbers.delete_number(get_session(), number=_number(number_id))


@blp.route("/<number_id>/sync")
class NumberSync(MethodView):
    @requires(Permission.numbers_manage)
    @blp.response(202, JobStartedSchema)
    def post(self, number_id):
        """Refresh name, quality rating, tier and status from Meta, as a job."""
        number = _number(number_id)
        job, _ = create_job(get_session(), org_id=number.organization_id, kind="numbers.sync", task_name=SYNC_NUMBER,
                            params={"number_id": str(number.id)}, created_by_id=current_principal().user.id)
        return {"job_id": job.id, "status": job.status.value}
