"""Message templates: create and submit for Meta's review, follow their status, render them."""

from flask.views import MethodView

from shared.permissions import Permission
from shared.queueing.names import SYNC_TEMPLATES
from shared.services import numbers, templates
from shared.services.jobs import create_job
from web.auth import current_principal, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.whatsapp import (
    JobStartedSchema,
    RenderedSchema,
    RenderSchema,
    TemplateCreatedSchema,
    TemplateCreateSchema,
    TemplateQueryArgsSchema,
    TemplateSchema,
    TemplateSyncSchema,
)

blp = Blueprint("templates", __name__, description="WhatsApp message templates")


def _template(template_id):
    return templates.get_template(get_session(), org_id=require_org_id(), template_id=template_id)


@blp.route("/", strict_slashes=False)
class TemplateList(MethodView):
    @requires(Permission.templates_read)
    @blp.arguments(TemplateQueryArgsSchema, location="query")
    @blp.response(200, TemplateSchema(many=True))
    def get(self, args):
        """Templates, filtered by status, category, language or name."""
        return templates.list_templates(get_session(), org_id=require_org_id(), **args)

    @requires(Permission.templates_manage)
    @blp.arguments(TemplateCreateSchema)
    @blp.response(202, TemplateCreatedSchema)
    def post(self, body):
        """Validate a template and submit it to Meta (as a job); its review result arrives by webhook."""
        session, org_id = get_session(), require_org_id()
        number = numbers.get_number(session, org_id=org_id, number_id=body.pop("number_id"))
        template, job = templates.create_template(
            session, org_id=org_id, number=number, definition=body, created_by_id=current_principal().user.id
        )
        return {**{name: getattr(template, name) for name in TemplateSchema().fields}, "job_id": job.id}


@blp.route("/sync")
class TemplateSync(MethodView):
    @requires(Permission.templates_manage)
    @blp.arguments(TemplateSyncSchema)
    @blp.response(202, JobStartedSchema)
    def post(self, body):
        """Bring in every template Meta has for the number's WABA, as a job."""
        number = numbers.get_number(get_session(), org_id=require_org_id(), number_id=body["number_id"])
        job, _ = create_job(get_session(), org_id=number.organization_id, kind="templates.sync",
                            task_name=SYNC_TEMPLATES, params={"number_id": str(number.id)},
                            created_by_id=current_principal().user.id)
        return {"job_id": job.id, "status": job.status.value}


@blp.route("/<template_id>")
class TemplateItem(MethodView):
    @requires(Permission.templates_read)
    @blp.response(200, TemplateSchema)
    def get(self, template_id):
        """One template and its review status."""
        return _template(template_id)

    @requires(Permission.templates_manage)
    @blp.response(204)
    def delete(self, template_id):
        """Delete a template here (deleting it at Meta is done in WhatsApp Manager or by the sync)."""
        templates.delete_template(get_session(), template=_template(template_id))


@blp.route("/<template_id>/render")
class TemplateRender(MethodView):
    @requires(Permission.templates_read)
    @blp.arguments(RenderSchema)
    @blp.response(200, RenderedSchema)
    def post(self, body, template_id):
        """The exact Graph `components` for these variables, or an error naming the missing or extra one."""
        return {"components": templates.render(_template(template_id), body["variables"])}
