"""CSV import (upload → preview → start a job → report) and export (a job → an expiring link)."""

from flask import Response, request
from flask.views import MethodView

from shared.errors import InvalidInputError, NotFoundError
from shared.permissions import Permission
from shared.queueing import names
from shared.services import contact_import
from shared.services.jobs import create_job
from shared.settings import get_settings
from shared.storage import get_storage, resolve_download_token
from web.auth import current_org, current_principal, public, require_org_id, requires
from web.blueprint import Blueprint
from web.db import get_session
from web.schemas.contact_imports import (
    ContactImportSchema,
    ExportCreateSchema,
    ImportMappingSchema,
    ImportPreviewSchema,
    ImportUploadSchema,
    JobAcceptedSchema,
)
from web.views import accepts_upload

blp = Blueprint("contact_imports", __name__, description="CSV import and export of contacts")
files_blp = Blueprint("files", __name__, description="Expiring download links")


def _import(import_id):
    return contact_import.get_import(get_session(), org_id=require_org_id(), import_id=import_id)


def _describe(record):
    return {
        **{f: getattr(record, f) for f in ("id", "filename", "size_bytes", "encoding", "delimiter", "headers", "job_id", "created_at")},
        "sample": contact_import.sample_rows(record),
        "report_available": record.report_key is not None,
    }


def _csv_download(key: str, filename: str) -> Response:
    handle = get_storage().open(key)
    response = Response(iter(lambda: handle.read(64 * 1024), b""), mimetype="text/csv")
    response.call_on_close(handle.close)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@blp.route("/imports")
class ImportUpload(MethodView):
    @requires(Permission.contacts_write)
    @accepts_upload()
    @blp.arguments(ImportUploadSchema, location="files")
    @blp.response(201, ContactImportSchema)
    def post(self, files):
        """Upload a CSV (UTF-8 or Latin-1, `,` or `;`): answers its columns and first rows, for mapping."""
        upload = files["file"]
        if not getattr(upload, "filename", None):
            raise InvalidInputError("Send the CSV as the multipart field `file`", details={"field": "file"})
        record = contact_import.create_import(
            get_session(), org_id=require_org_id(), filename=upload.filename, stream=upload.stream,
            created_by_id=current_principal().user.id,
        )
        return _describe(record)


@blp.route("/imports/<import_id>")
class ImportItem(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, ContactImportSchema)
    def get(self, import_id):
        """An uploaded file, and the job importing it once started."""
        return _describe(_import(import_id))


@blp.route("/imports/<import_id>/preview")
class ImportPreview(MethodView):
    @requires(Permission.contacts_write)
    @blp.arguments(ImportMappingSchema)
    @blp.response(200, ImportPreviewSchema)
    def post(self, body, import_id):
        """What the first rows would do under this mapping (create / update / skip / invalid); nothing is written."""
        session, record = get_session(), _import(import_id)
        mapping, ignored = contact_import.validate_mapping(session, record=record, **body)
        return {"rows": contact_import.preview(session, org=current_org(), record=record, mapping=mapping),
                "ignored_columns": ignored}


@blp.route("/imports/<import_id>/start")
class ImportStart(MethodView):
    @requires(Permission.contacts_write)
    @blp.arguments(ImportMappingSchema)
    @blp.response(202, JobAcceptedSchema)
    def post(self, body, import_id):
        """Import the whole file as a job; its result has the counts, and the error report is downloadable."""
        session, record = get_session(), _import(import_id)
        contact_import.validate_mapping(session, record=record, **body)
        job, _ = create_job(
            session, org_id=record.organization_id, kind="contacts.import", task_name=names.IMPORT_CONTACTS,
            params={"import_id": str(record.id), **body}, created_by_id=current_principal().user.id,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        record.job_id = job.id
        return {"job_id": job.id, "status": job.status.value}


@blp.route("/imports/<import_id>/report")
class ImportReport(MethodView):
    @requires(Permission.contacts_read)
    @blp.response(200, description="CSV: row, column, value, reason")
    def get(self, import_id):
        """The rows that were not imported and why."""
        record = _import(import_id)
        if record.report_key is None:
            raise NotFoundError("This import has no error report (yet, or it had no errors)")
        return _csv_download(record.report_key, f"{record.filename.rsplit('.', 1)[0]}-errors.csv")


@blp.route("/exports")
class ExportStart(MethodView):
    @requires(Permission.contacts_read)
    @blp.arguments(ExportCreateSchema)
    @blp.response(202, JobAcceptedSchema)
    def post(self, body):
        """Export the contacts matching a filter to CSV as a job; the job's result carries an expiring link."""
        job, _ = create_job(
            get_session(), org_id=require_org_id(), kind="contacts.export", task_name=names.EXPORT_CONTACTS,
            params={"filters": body["filters"]}, created_by_id=current_principal().user.id,
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return {"job_id": job.id, "status": job.status.value}


@files_blp.route("/<token>")
class FileDownload(MethodView):
    @public
    @files_blp.doc(security=[])
    @files_blp.response(200, description="The file")
    def get(self, token):
        """Download through a signed link (no bearer token needed until it expires)."""
        key, filename = resolve_download_token(token, max_age_seconds=get_settings().download_link_ttl_seconds)
        return _csv_download(key, filename)
