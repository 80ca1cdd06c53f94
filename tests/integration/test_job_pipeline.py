"""The intent-record mechanism end to end, with a real worker process on the real broker."""

import json
import os
import signal

import pytest

from shared.db import unit_of_work
from shared.health import ping_pools
from shared.models import JobStatus, Organization
from shared.queueing import publish
from shared.queueing.names import QUEUES
from shared.redis_client import get_redis
from shared.services import jobs
from tests.integration.conftest import wait_for
from tests.integration.probe_tasks import PROBE_JOB

pytestmark = pytest.mark.integration


def create_probe_job(**params):
    with unit_of_work() as session:
        org = Organization(name="Integration Org")
        session.add(org)
        session.flush()
        job, _ = jobs.create_job(session, org_id=org.id, kind="probe", task_name=PROBE_JOB, params=params)
        return job.id, org.id


def job_state(job_id, org_id):
    with unit_of_work() as session:
        return jobs.get_job(session, org_id=org_id, job_id=job_id)


def wait_until_finished(job_id, org_id, timeout=60):
    return wait_for(
        lambda: (job := job_state(job_id, org_id)).status.is_terminal and job,
        timeout=timeout,
        interval=0.2,
        what=f"job {job_id} to finish",
    )


def runs(job_id):
    return [json.loads(raw) for raw in get_redis().lrange(f"probe:{job_id}:runs", 0, -1)]


def test_a_job_enqueued_after_commit_completes(worker, committed):
    job_id, org_id = create_probe_job()
    job = wait_until_finished(job_id, org_id)
    assert job.status == JobStatus.succeeded, (job.error_code, job.error_message)
    assert job.progress == 100 and job.result["attempt"] == 1
    assert int(get_redis().get(f"probe:{job_id}:completions")) == 1


def test_a_job_whose_publish_was_lost_is_picked_up_by_the_sweep(worker, beat, committed):
    lost = []
    publish.set_publisher(lambda name, kwargs, countdown=None: lost.append(name))  # the broker never hears of it
    try:
        job_id, org_id = create_probe_job()
    finally:
        publish.set_publisher(None)
    assert lost == [PROBE_JOB]
    assert job_state(job_id, org_id).status == JobStatus.queued
    job = wait_until_finished(job_id, org_id, timeout=45)
    assert job.status == JobStatus.succeeded
    assert int(get_redis().get(f"probe:{job_id}:completions")) == 1
    assert "maintenance.sweep_stale_jobs" in beat.log()


def test_a_worker_killed_mid_task_leads_to_redelivery_and_the_job_completes_once(worker, committed):
    job_id, org_id = create_probe_job(hold_seconds=3)
    first = wait_for(lambda: runs(job_id), timeout=30, what="the first run to start")[0]
    os.kill(first["pid"], signal.SIGKILL)  # the pool child dies mid-task, its message unacked

    job = wait_until_finished(job_id, org_id, timeout=60)
    assert job.status == JobStatus.succeeded, (job.error_code, job.error_message)
    assert [run["attempt"] for run in runs(job_id)] == [1, 2]
    assert job.attempts == 2
    assert job.result["pid"] != first["pid"]
    assert int(get_redis().get(f"probe:{job_id}:completions")) == 1


def test_every_queue_round_trips_a_ping(worker):
    results = ping_pools(timeout=10)
    assert {queue: result.ok for queue, result in results.items()} == {queue: True for queue in QUEUES}
    assert all(result.worker.startswith("itest@") for result in results.values())
