"""A CSV import runs on a real worker process, after commit, and lands once."""

import io

import pytest
from sqlalchemy import func, select

from shared.db import unit_of_work
from shared.models import Contact, JobStatus, Organization
from shared.queueing.names import IMPORT_CONTACTS
from shared.services import contact_import, jobs
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration

CSV = b"phone;name\n+5511987650001;Ana\n551187650001;Ana again\n+5511987650002;Bia\nnope;Bad\n"


def test_an_import_job_runs_on_the_worker(worker, committed):
    with unit_of_work() as session:
        org = Organization(name="Importer", plan_code="enterprise")
        session.add(org)
        session.flush()
        record = contact_import.create_import(
            session, org_id=org.id, filename="a.csv", stream=io.BytesIO(CSV), created_by_id=None
        )
        job, _ = jobs.create_job(
            session, org_id=org.id, kind="contacts.import", task_name=IMPORT_CONTACTS,
            params={"import_id": str(record.id), "columns": {"phone": "phone", "name": "name"}, "mode": "skip_existing"},
        )
        org_id, job_id = org.id, job.id

    def finished():
        with unit_of_work() as session:
            current = jobs.get_job(session, org_id=org_id, job_id=job_id)
            return current if current.status.is_terminal else None

    job = wait_for(finished, timeout=60, interval=0.2, what="the import job")
    assert job.status == JobStatus.succeeded, (job.error_code, job.error_message)
    assert (job.result["created"], job.result["duplicates_in_file"], job.result["invalid"]) == (2, 1, 1)
    with unit_of_work() as session:
        count = session.execute(select(func.count()).where(Contact.organization_id == org_id)).scalar_one()
    assert count == 2
