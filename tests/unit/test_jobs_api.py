"""GET /api/v1/jobs and /api/v1/jobs/{id}: how a client follows an asynchronous operation."""

from shared.models import JobStatus
from shared.services import jobs


def create(session, org, **overrides):
    job, _ = jobs.create_job(
        session, org_id=org.id, kind=overrides.pop("kind", "contacts.import"), task_name="maintenance.x", **overrides
    )
    return job


def test_get_a_job_shows_status_and_progress(client, db_session, organization, admin_headers):
    job = create(db_session, organization)
    jobs.claim_job(db_session, job_id=job.id, task_id="t", lease_seconds=60)
    jobs.report_progress(db_session, job_id=job.id, progress=40, message="row 400 of 1000", lease_seconds=60)
    body = client.get(f"/api/v1/jobs/{job.id}", headers=admin_headers).get_json()
    assert body["id"] == str(job.id)
    assert (body["status"], body["progress"], body["progress_message"]) == ("running", 40, "row 400 of 1000")
    assert body["created_at"].endswith("+00:00")


def test_list_filters_by_kind_and_status_and_pages(client, db_session, organization, admin_headers):
    for _ in range(3):
        create(db_session, organization, kind="contacts.import")
    done = create(db_session, organization, kind="contacts.export")
    jobs.claim_job(db_session, job_id=done.id, task_id="t", lease_seconds=60)
    jobs.finish_job(db_session, job_id=done.id, result={"url": "x"})

    imports = client.get("/api/v1/jobs?kind=contacts.import&limit=2", headers=admin_headers).get_json()
    assert len(imports["items"]) == 2 and imports["next_cursor"]
    rest = client.get(f"/api/v1/jobs?kind=contacts.import&limit=2&cursor={imports['next_cursor']}", headers=admin_headers).get_json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None

    succeeded = client.get("/api/v1/jobs?status=succeeded", headers=admin_headers).get_json()["items"]
    assert [item["id"] for item in succeeded] == [str(done.id)]
    assert succeeded[0]["result"] == {"url": "x"}


def test_a_forged_cursor_is_a_validation_error(client, admin_headers):
    response = client.get("/api/v1/jobs?cursor=bm90LWEtY3Vyc29y", headers=admin_headers)
    assert response.status_code == 422
    assert "cursor" in response.get_json()["details"]["errors"]["query"]


def test_cancel_a_queued_job_then_cancelling_again_is_a_conflict(client, db_session, organization, admin_headers):
    job = create(db_session, organization)
    response = client.post(f"/api/v1/jobs/{job.id}/cancel", headers=admin_headers, json={"reason": "uploaded the wrong file"})
    assert response.status_code == 200
    assert response.get_json()["status"] == JobStatus.cancelled.value
    again = client.post(f"/api/v1/jobs/{job.id}/cancel", headers=admin_headers)
    assert again.status_code == 409
    assert again.get_json()["code"] == "job_not_cancellable"
