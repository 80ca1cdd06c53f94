"""The queues, the routes, the Procfile and docker-compose.yml agree: every queue has a pool everywhere."""

import re

import yaml

from shared.queueing.names import PING_TASKS, QUEUES, SWEEP_STALE_JOBS, queue_for
from tests.conftest import project_file


def procfile() -> dict[str, str]:
    lines = project_file("Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip() and not line.startswith("#"))


def consumed_queues(command: str) -> set[str]:
    match = re.search(r"-Q\s+(\S+)", command)
    return set(match.group(1).split(",")) if match else set()


def test_routes_send_each_pipeline_to_its_own_queue(settings):
    from celeryconfig import route_by_prefix  # after the suite's settings are installed

    for queue in QUEUES:
        assert route_by_prefix(f"{queue}.anything", (), {}, {})["queue"] == queue
    assert queue_for(SWEEP_STALE_JOBS) == "maintenance"
    assert {queue_for(name) for name in PING_TASKS} == set(QUEUES)


def test_every_queue_has_a_pool_in_the_procfile():
    processes = procfile()
    for queue in QUEUES:
        assert queue in processes, f"no Procfile line for the {queue} pool"
        assert consumed_queues(processes[queue]) == {queue}
    assert {"release", "web", "beat", "flower"} <= set(processes)
    assert "alembic upgrade head" in processes["release"]


def test_every_queue_has_a_pool_in_docker_compose():
    services = yaml.safe_load(project_file("docker-compose.yml").read_text())["services"]
    pools = {name: consumed_queues(" ".join(svc.get("command", []))) for name, svc in services.items()}
    for queue in QUEUES:
        assert any(queue in consumed for consumed in pools.values()), f"no compose service consumes {queue}"
    assert {"postgres", "redis", "mongodb", "web", "beat", "flower"} <= set(services)


def test_the_make_run_process_list_covers_every_procfile_process_but_release():
    makefile = project_file("Makefile").read_text()
    listed = set(re.search(r"^PROCESSES := (.+)$", makefile, re.M).group(1).split())
    assert listed == set(procfile()) - {"release"}


def test_web_and_every_pool_share_one_files_volume_in_compose():
    """An import uploaded to web is read by the maintenance pool; an export written by a pool is served by web."""
    compose = yaml.safe_load(project_file("docker-compose.yml").read_text())
    services = compose["services"]
    storage = {name: service["environment"]["STORAGE_DIR"] for name, service in services.items()
               if "environment" in service and "STORAGE_DIR" in service["environment"]}
    app_services = {"web", *QUEUES}
    assert app_services <= set(storage), f"no STORAGE_DIR for {sorted(app_services - set(storage))}"
    for name in app_services:
        mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in services[name].get("volumes", [])}
        assert storage[name] in mounts, f"{name} does not mount a volume at {storage[name]}"
        assert mounts[storage[name]] in compose["volumes"], f"{name}'s files are not on a named volume"
    assert len({(storage[n], tuple(services[n]["volumes"])) for n in app_services}) == 1  # one and the same
