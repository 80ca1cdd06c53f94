"""Campaigns end to end through the Cloud API sandbox (issue 12's acceptance), with real pools and beat.

Real web (campaigns are built and driven through its API; the sandbox posts its signed webhooks to it), the
session's worker (webhooks, bots, maintenance) and beat, and for this module a campaigns pool and a sends pool
of their own, as the Procfile runs them: a campaign's drip, its number's dispatcher and the status webhooks each
have a process, so pace, pauses and kills show as a user would see them. What each customer received is counted
at the sandbox, per recipient.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import os
import re
import signal
import sys
import time
import uuid

import pytest
import requests
from sqlalchemy import func, insert, select, text

from shared.db import unit_of_work
from shared.models import CampaignRecipient, ConsentState, Contact, Message, MessageTemplate, RecipientState
from shared.models.base import utcnow
from shared.queueing.celery_app import celery_app
from shared.queueing.names import CAMPAIGNS, SENDS
from tests.integration.conftest import Process, process_env, wait_for
from tests.integration.test_conversations_end_to_end import (  # noqa: F401 (fixture)
    NUMBER,
    PHONE_NUMBER_ID,
    _pool_children,
    inbox,
)

pytestmark = pytest.mark.integration

SLOW = 60  # seconds: the CI machine is slow; every wait is for a final state, never a timing
SWEEP_INTERVAL = 1.0  # CAMPAIGN_SWEEP_INTERVAL_SECONDS of the platform (tests/integration/conftest.py)
STALE_SECONDS = "3"  # the campaigns pool resumes a drip this quiet (its worker died): short, for the kill test
PROMO = {
    "waba_id": NUMBER["waba_id"], "name": "spring_promo", "language": "en_US", "category": "MARKETING",
    "components": [
        {"type": "BODY", "text": "Hi {{1}}, our spring sale starts today.", "example": {"body_text": [["Ana"]]}},
        {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Tell me more"},
                                        {"type": "QUICK_REPLY", "text": "Not now"}]},
    ],
}
# {{1}} is the first name; a tap on "Tell me more" carries the payload "promo-more", one on "Not now" its label.
VARIABLES = {"body": [{"source": "contact.first_name", "fallback": "there"}],
             "buttons": {"0": [{"source": "literal", "value": "promo-more"}]}}
_serial = itertools.count(1)  # this module's customers: 1659…, unique for the session's sandbox


def new_wa_id() -> str:
    return f"1659{next(_serial):07d}"


def ok(response, status=200):
    assert response.status_code == status, response.text
    return response.json()


# -- the module's campaigns and sends pools ------------------------------------------------------------------

def _itest_node() -> str:
    replies = celery_app.control.ping(timeout=2)
    nodes = [node for answer in replies for node in answer if node.startswith("itest@")]
    assert nodes, f"the session's worker does not answer pings: {replies}"
    return nodes[0]


def _consume(node: str, queue: str, on: bool) -> None:
    control = celery_app.control.add_consumer if on else celery_app.control.cancel_consumer
    assert control(queue, destination=[node], reply=True, timeout=5), f"{node} did not answer for {queue}"


class Pools:
    """A campaigns pool and a sends pool (Procfile's arguments); the campaigns one can be killed and replaced."""

    def __init__(self, broker, sandbox, log_dir) -> None:
        self.broker, self.sandbox, self.log_dir = broker, sandbox, log_dir
        self.started = itertools.count(1)
        self.sends = self._start(SENDS)
        self.campaigns = self._start(CAMPAIGNS)

    def _start(self, queue: str) -> Process:
        name = f"{queue}-{next(self.started)}"
        process = Process(name, [
            sys.executable, "-m", "celery", "-A", "workers.app", "worker", "-Q", queue, "-n", f"{name}@%h",
            "--concurrency", "2", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle",
            "--loglevel", "INFO"], process_env(self.broker, WHATSAPP_API_BASE=self.sandbox,
                                               CAMPAIGN_STALE_SECONDS=STALE_SECONDS), self.log_dir)
        try:
            wait_for(lambda: " ready." in process.log() or process.popen.poll() is not None, timeout=SLOW,
                     interval=0.2, what=f"the {name} worker to start")
        except AssertionError:
            process.stop()
            raise
        assert process.popen.poll() is None, process.log()[-3000:]
        return process

    def kill_campaigns_children(self) -> None:
        """SIGKILL the campaigns pool's children: the worker lives on, forks new ones and gets the lost task back."""
        for child in _pool_children(self.campaigns.popen.pid):
            os.kill(child, signal.SIGKILL)

    def kill_campaigns_worker(self) -> None:
        """SIGKILL the whole campaigns worker (frozen first: it must not see its children die and hand back its
        task), then start another: the sweep resumes the drip that went quiet."""
        main = self.campaigns.popen.pid
        children = _pool_children(main)
        os.kill(main, signal.SIGSTOP)
        for child in children:
            os.kill(child, signal.SIGKILL)
        os.kill(main, signal.SIGKILL)
        self.campaigns.popen.wait(timeout=10)
        self.campaigns = self._start(CAMPAIGNS)

    def stop(self) -> None:
        for process in (self.campaigns, self.sends):
            process.stop()


@pytest.fixture(scope="module")
def pools(worker, beat, broker, sandbox, tmp_path_factory):
    """The session's merged worker stops consuming `campaigns` and `sends` for this module."""
    node = _itest_node()
    for queue in (CAMPAIGNS, SENDS):
        _consume(node, queue, False)
    try:
        started = Pools(broker, sandbox, tmp_path_factory.mktemp("campaign-pools"))
        try:
            yield started
        finally:
            started.stop()
    finally:
        for queue in (CAMPAIGNS, SENDS):
            _consume(node, queue, True)


# -- a marketer of the inbox's organization, and what the sandbox saw ---------------------------------------

class Marketer:
    """The inbox's admin running campaigns through the API; the sandbox's view of the customers."""

    def __init__(self, inbox, template_id) -> None:
        self.inbox, self.template_id = inbox, template_id
        self.names = itertools.count(1)

    def api(self, method, path, status=200, **kwargs):
        return ok(self.inbox.api(method, path, self.inbox.admin, **kwargs), status)

    def contacts(self, count: int, **fields) -> list[str]:
        """`count` contacts opted in to marketing (unless `fields` say otherwise), inserted set-wise: their wa_ids."""
        wa_ids = [new_wa_id() for _ in range(count)]
        rows = [{"organization_id": self.inbox.org_id, "wa_id": wa_id, "phone_e164": f"+{wa_id}",
                 "identity_key": wa_id, "name": f"Client{n} Test", "marketing_consent": ConsentState.opted_in,
                 **fields} for n, wa_id in enumerate(wa_ids)]
        with unit_of_work() as session:
            session.execute(insert(Contact), rows)
        return wa_ids

    def number(self, **changes) -> dict:
        return self.api("PATCH", f"/numbers/{self.inbox.number_id}", json=changes)

    def campaign(self, **fields) -> str:
        body = {"name": f"Spring sale {next(self.names)}", "template_id": str(self.template_id),
                "variables": VARIABLES, **fields}
        return self.api("POST", "/campaigns", 201, json=body)["id"]

    def start(self, campaign_id: str) -> dict:
        return self.api("POST", f"/campaigns/{campaign_id}/start", 202)

    def get(self, campaign_id: str) -> dict:
        return self.api("GET", f"/campaigns/{campaign_id}")

    def stats(self, campaign_id: str) -> dict:
        return self.api("GET", f"/campaigns/{campaign_id}/stats")

    def progress(self, campaign_id: str) -> dict:
        return self.api("GET", f"/campaigns/{campaign_id}/progress")

    def recipients(self, campaign_id: str, status: str | None = None) -> list[dict]:
        items, cursor = [], None
        while True:
            params = {"limit": 200, **({"status": status} if status else {}), **({"cursor": cursor} if cursor else {})}
            page = self.api("GET", f"/campaigns/{campaign_id}/recipients", params=params)
            items += page["items"]
            if not (cursor := page["next_cursor"]):
                return items

    def reaches(self, campaign_id: str, status: str, *, timeout: float = SLOW) -> dict:
        def there():
            campaign = self.get(campaign_id)
            return campaign if campaign["status"] == status else None

        try:
            return wait_for(there, timeout=timeout, interval=0.3, what=f"the campaign to be {status}")
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}: {self.progress(campaign_id)}") from None

    def queued_here(self, campaign_id: str) -> int:
        """The campaign's messages that left (a wamid recorded): cheap to poll while it runs."""
        with unit_of_work() as session:
            return session.execute(select(func.count()).select_from(Message).where(
                Message.campaign_id == uuid.UUID(campaign_id), Message.wamid.is_not(None))).scalar_one()

    def sandbox(self, method, path, **kwargs):
        response = requests.request(method, f"{self.inbox.sandbox}/_sandbox{path}", timeout=10, **kwargs)
        response.raise_for_status()
        return response.json()

    def accepted(self, wa_ids) -> dict[str, list[dict]]:
        """The templates the sandbox accepted for each of `wa_ids` (every one listed, even with none)."""
        wanted = {wa_id: [] for wa_id in wa_ids}
        for message in self.sandbox("GET", "/messages", params={"phone_number_id": PHONE_NUMBER_ID,
                                                                  "type": "template"})["data"]:
            if message["wa_id"] in wanted:
                wanted[message["wa_id"]].append(message)
        return wanted

    def received_once(self, wa_ids) -> None:
        counts = {wa_id: len(got) for wa_id, got in self.accepted(wa_ids).items()}
        assert counts == dict.fromkeys(wa_ids, 1), {w: n for w, n in counts.items() if n != 1}

    def send_requests(self, wa_ids) -> dict[str, list[dict]]:
        """Every send request the sandbox received for each of `wa_ids`, refused ones included, in arrival order."""
        wanted = {wa_id: [] for wa_id in wa_ids}
        for entry in self.sandbox("GET", "/requests", params={"kind": "messages", "method": "POST"})["data"]:
            to = "".join(ch for ch in str((entry.get("body") or {}).get("to", "")) if ch.isdigit())
            if to in wanted:
                wanted[to].append(entry)
        return wanted

    def faults(self, **changes) -> None:
        self.sandbox("PATCH", "/faults", json=changes)

    def sandbox_number(self, **knobs) -> None:
        self.sandbox("PATCH", f"/numbers/{PHONE_NUMBER_ID}", json=knobs)


def _finished_job(marketer: Marketer, answer: dict) -> dict:
    def finished():
        job = marketer.api("GET", f"/jobs/{answer['job_id']}")
        return job if job["status"] in ("succeeded", "failed", "cancelled") else None

    job = wait_for(finished, timeout=SLOW, interval=0.3, what="the job")
    assert job["status"] == "succeeded", job
    return job


@pytest.fixture
def marketer(inbox, pools):
    """The promo approved at Meta (the sandbox) and synced in, the number synced (an unlimited messaging tier)."""
    probe = Marketer(inbox, None)
    if not probe.sandbox("GET", "/templates", params={"waba_id": NUMBER["waba_id"], "name": PROMO["name"]})["data"]:
        probe.sandbox("POST", "/templates", json=PROMO)
    probe.sandbox_number(messaging_limit_tier="TIER_UNLIMITED")
    number_id = str(inbox.number_id)
    _finished_job(probe, probe.api("POST", "/templates/sync", 202, json={"number_id": number_id}))
    _finished_job(probe, probe.api("POST", f"/numbers/{number_id}/sync", 202))
    with unit_of_work() as session:
        template_id = session.execute(select(MessageTemplate.id).where(
            MessageTemplate.organization_id == inbox.org_id, MessageTemplate.name == PROMO["name"],
            MessageTemplate.status == "APPROVED")).scalar_one()
    marketer = Marketer(inbox, template_id)
    try:
        yield marketer
    finally:
        marketer.faults(recipient_errors={}, rate_limit_storm_seconds=0)
        for campaign in marketer.api("GET", "/campaigns"):  # nothing keeps sending after the test
            if campaign["status"] in ("scheduled", "running", "paused"):
                marketer.api("POST", f"/campaigns/{campaign['id']}/cancel")


# -- the tests ----------------------------------------------------------------------------------------------

def test_a_scheduled_campaign_is_started_by_beat_within_one_sweep_interval(marketer):
    wa_ids = marketer.contacts(3)
    campaign_id = marketer.campaign()
    at = (utcnow() + dt.timedelta(seconds=2)).replace(microsecond=0)
    scheduled = marketer.api("POST", f"/campaigns/{campaign_id}/schedule", json={"scheduled_at": at.isoformat()})
    assert scheduled["status"] == "scheduled"
    assert marketer.get(campaign_id)["status"] == "scheduled"  # nobody started it but beat

    done = marketer.reaches(campaign_id, "completed")
    started_at = dt.datetime.fromisoformat(done["started_at"])
    late = (started_at - at).total_seconds()
    # One interval, and a second more for the beat's task to reach the pool on a busy machine.
    assert 0 <= late <= SWEEP_INTERVAL + 1.0, late
    marketer.received_once(wa_ids)


def test_pause_and_resume_send_every_eligible_recipient_exactly_once_and_no_suppressed_one(marketer):
    eligible = marketer.contacts(60)
    suppressed = {"opted_out": marketer.contacts(1, marketing_consent=ConsentState.opted_out),
                  "no_opt_in": marketer.contacts(1, marketing_consent=ConsentState.unknown),
                  "blocked": marketer.contacts(1, blocked_at=utcnow())}
    campaign_id = marketer.campaign(rate_limit_per_second=10)
    marketer.start(campaign_id)
    wait_for(lambda: marketer.queued_here(campaign_id) >= 15, timeout=SLOW, what="a quarter of the campaign to go")

    paused = marketer.api("POST", f"/campaigns/{campaign_id}/pause")
    assert paused["status"] == "paused"
    time.sleep(1.5)  # what a dispatcher had already claimed still goes
    at_pause = sum(map(len, marketer.accepted(eligible).values()))
    time.sleep(2.5)
    assert sum(map(len, marketer.accepted(eligible).values())) == at_pause  # nothing goes while paused
    assert at_pause < len(eligible)
    assert marketer.progress(campaign_id)["pending"] > 0

    assert marketer.api("POST", f"/campaigns/{campaign_id}/resume", 202)["status"] == "running"
    marketer.reaches(campaign_id, "completed")
    marketer.received_once(eligible)
    assert marketer.accepted([w for ids in suppressed.values() for w in ids]) == {
        w: [] for ids in suppressed.values() for w in ids}
    skipped = {item["phone"][1:]: item["reason"] for item in marketer.recipients(campaign_id, "skipped")}
    assert skipped == {wa_id: reason for reason, [wa_id] in suppressed.items()}


def test_the_campaigns_worker_killed_twice_mid_run_still_sends_every_recipient_exactly_once(marketer, pools):
    """First its pool children (the worker gets the lost turn back), then the whole worker (another one is started;
    the sweep resumes the drip that went quiet)."""
    wa_ids = marketer.contacts(300)
    marketer.number(throughput_mps=25)  # about 12 s for the whole audience: the kills land mid-run
    campaign_id = marketer.campaign()
    marketer.start(campaign_id)

    wait_for(lambda: marketer.queued_here(campaign_id) >= 60, timeout=SLOW, what="a fifth of the campaign to go")
    pools.kill_campaigns_children()
    wait_for(lambda: marketer.queued_here(campaign_id) >= 150, timeout=SLOW, what="half of the campaign to go")
    at_kill = marketer.queued_here(campaign_id)
    pools.kill_campaigns_worker()
    assert at_kill < len(wa_ids), "the campaign had finished before the second kill"

    marketer.reaches(campaign_id, "completed", timeout=120)
    marketer.received_once(wa_ids)
    taken_over = pools.campaigns.log()  # the new worker's sweep resumed the quiet drip, and it went on from there
    assert re.search(r"campaigns\.sweep .*resumed=1", taken_over) and re.search(r"queued=[1-9]", taken_over)
    progress = marketer.progress(campaign_id)
    assert (progress["recipients"], progress["done"], progress["pending"]) == (300, 300, 0)


def _rate(times: list[float], start: float, end: float) -> float:
    return sum(start <= t < end for t in times) / (end - start)


def test_a_130429_storm_slows_the_pace_which_recovers_and_everyone_gets_one_message(marketer):
    wa_ids = marketer.contacts(240)
    marketer.number(throughput_mps=40)  # the sandbox takes 80 a second: only the storm answers 130429
    campaign_id = marketer.campaign()
    marketer.start(campaign_id)
    wait_for(lambda: marketer.queued_here(campaign_id) >= 40, timeout=SLOW, interval=0.05,
             what="the campaign to be under way")
    marketer.faults(rate_limit_storm_seconds=3)

    marketer.reaches(campaign_id, "completed", timeout=120)
    marketer.received_once(wa_ids)
    sends = [entry for entries in marketer.send_requests(wa_ids).values() for entry in entries]
    storm = sorted(entry["at"] for entry in sends if entry["error_code"] == 130429)
    assert storm, "the storm's 130429s never reached PyTake"
    assert {entry["error_code"] for entry in sends} == {None, 130429}
    went = sorted(entry["at"] for entry in sends if entry["error_code"] is None)
    before = _rate(went, went[0], storm[0])
    after = _rate(went, storm[-1], storm[-1] + 3)  # the pace halved at each 130429
    last = _rate(went, went[-1] - 3, went[-1] + 0.001)  # and it climbed back
    rates = {"before": round(before, 1), "right_after": round(after, 1), "at_the_end": round(last, 1)}
    assert after < before / 2, rates
    assert last > 2 * after, rates


def test_a_contact_who_opts_out_mid_campaign_is_skipped_with_the_reason_and_never_receives_it(marketer):
    wa_ids = marketer.contacts(40)
    campaign_id = marketer.campaign(rate_limit_per_second=4)  # 10 s for the whole audience
    marketer.start(campaign_id)
    wait_for(lambda: marketer.progress(campaign_id)["audience_resolved"], timeout=SLOW, what="the ledger")
    with unit_of_work() as session:  # the last recipient in the drip's order
        leaving = session.execute(
            select(Contact.wa_id).join(CampaignRecipient, CampaignRecipient.contact_id == Contact.id)
            .where(CampaignRecipient.campaign_id == uuid.UUID(campaign_id))
            .order_by(CampaignRecipient.next_attempt_at.desc(), CampaignRecipient.id.desc()).limit(1)).scalar_one()

    marketer.inbox.customer_says(leaving, "STOP")

    def opted_out():
        with unit_of_work() as session:
            return session.execute(select(Contact.marketing_consent).where(
                Contact.organization_id == marketer.inbox.org_id, Contact.wa_id == leaving)
            ).scalar_one() == ConsentState.opted_out

    wait_for(opted_out, timeout=SLOW, interval=0.2, what="the opt-out")
    with unit_of_work() as session:
        state = session.execute(select(CampaignRecipient.state).join(Contact, Contact.id == CampaignRecipient.contact_id)
                                .where(CampaignRecipient.campaign_id == uuid.UUID(campaign_id),
                                       Contact.wa_id == leaving)).scalar_one()
    assert state == RecipientState.pending, "the campaign reached the contact before the opt-out: inconclusive"

    marketer.reaches(campaign_id, "completed")
    [skipped] = marketer.recipients(campaign_id, "skipped")
    assert (skipped["phone"], skipped["status"], skipped["reason"]) == (f"+{leaving}", "skipped", "opted_out")
    staying = [wa_id for wa_id in wa_ids if wa_id != leaving]
    marketer.received_once(staying)
    assert marketer.accepted([leaving]) == {leaving: []}
    assert marketer.stats(campaign_id)["skipped_by_reason"] == {"opted_out": 1}


def test_a_quality_drop_to_red_pauses_the_campaign_with_an_alert(marketer):
    wa_ids = marketer.contacts(100)
    campaign_id = marketer.campaign(rate_limit_per_second=5)
    marketer.start(campaign_id)
    wait_for(lambda: marketer.queued_here(campaign_id) >= 10, timeout=SLOW, what="the campaign to be under way")

    marketer.sandbox("POST", f"/numbers/{PHONE_NUMBER_ID}/quality", json={"quality_rating": "RED"})

    paused = marketer.reaches(campaign_id, "paused", timeout=30)
    assert paused["pause_reason"] == "quality_red"
    alerts = marketer.api("GET", "/alerts", params={"kind": "campaign_paused"})["items"]
    assert [(a["subject_id"], a["data"]["reason"]) for a in alerts] == [(campaign_id, "quality_red")]
    time.sleep(1.5)  # what a dispatcher had already claimed still goes
    at_pause = sum(map(len, marketer.accepted(wa_ids).values()))
    time.sleep(2.5)
    assert sum(map(len, marketer.accepted(wa_ids).values())) == at_pause < len(wa_ids)
    assert marketer.get(campaign_id)["status"] == "paused"


def test_a_131049_is_retried_the_next_day_and_a_131026_is_not(marketer):
    capped, gone, *others = marketer.contacts(6)
    marketer.faults(recipient_errors={capped: {"code": 131049, "times": 1}, gone: {"code": 131026, "times": 1}})
    campaign_id = marketer.campaign()
    marketer.start(campaign_id)

    def waiting_for_tomorrow():
        progress = marketer.progress(campaign_id)
        return progress["waiting_retry"] == 1 and progress["pending"] == progress["in_flight"] == 0 and progress

    wait_for(waiting_for_tomorrow, timeout=SLOW, interval=0.3, what="everyone but the capped one to be done")
    assert marketer.get(campaign_id)["status"] == "running"  # it waits for the retry, it does not end
    [row] = marketer.recipients(campaign_id, "retry")
    assert row["phone"] == f"+{capped}" and row["error_code"] == "131049"
    next_attempt = dt.datetime.fromisoformat(row["next_attempt_at"])
    assert next_attempt - utcnow() > dt.timedelta(hours=23)

    # The next day, simulated: the capped recipient's ledger row becomes due now.
    with unit_of_work() as session:
        session.execute(text("UPDATE campaign_recipients SET next_attempt_at = now() - interval '1 second' "
                             "WHERE id = :id"), {"id": row["id"]})
    marketer.reaches(campaign_id, "completed")

    tries = marketer.send_requests([capped, gone])
    assert [entry["error_code"] for entry in tries[capped]] == [131049, None]  # sent again, once
    assert [entry["error_code"] for entry in tries[gone]] == [131026]  # not retried
    marketer.received_once([capped, *others])
    failed = wait_for(lambda: (s := marketer.stats(campaign_id))["sent"] == 5 and s, timeout=SLOW,
                      what="the sent statuses")
    assert failed["failed_by_code"] == {"131026": 1} and failed["failed"] == 1


STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3}


def _funnel_at_the_sandbox(accepted: dict[str, list[dict]]) -> dict[str, int]:
    reached = [max((STATUS_RANK.get(s["status"], 0) for s in message["statuses"]), default=0)
               for messages in accepted.values() for message in messages]
    return {"sent": sum(r >= 1 for r in reached), "delivered": sum(r >= 2 for r in reached),
            "read": sum(r >= 3 for r in reached)}


def test_the_funnel_matches_the_sandboxs_statuses_replies_and_clicks(marketer):
    wa_ids = marketer.contacts(12)
    marketer.sandbox_number(auto_statuses=["sent"])  # the first ones are never delivered, the next never read
    campaign_id = marketer.campaign(rate_limit_per_second=2)
    marketer.start(campaign_id)
    wait_for(lambda: marketer.queued_here(campaign_id) >= 4, timeout=SLOW, interval=0.05, what="four sent")
    marketer.sandbox_number(auto_statuses=["sent", "delivered"])
    wait_for(lambda: marketer.queued_here(campaign_id) >= 8, timeout=SLOW, interval=0.05, what="eight sent")
    marketer.sandbox_number(auto_statuses=["sent", "delivered", "read"])
    marketer.reaches(campaign_id, "completed")

    accepted = marketer.accepted(wa_ids)
    wamids = [messages[0]["id"] for messages in accepted.values()]
    answers = [{"context": {"id": wamids[0]}, "text": "Is it for shoes too?"},
               {"context": {"id": wamids[1]}, "text": "Which stores?"},
               {"context": {"id": wamids[2]}, "type": "button", "button": {"index": 0}},
               {"context": {"id": wamids[3]}, "type": "button", "button": {"index": 0}},
               {"context": {"id": wamids[4]}, "type": "button", "button": {"index": 1}}]
    for answer in answers:
        marketer.sandbox("POST", f"/numbers/{PHONE_NUMBER_ID}/inbound", json=answer)

    expected = {**_funnel_at_the_sandbox(accepted), "replied": 5, "clicked": 3, "failed": 0, "skipped": 0,
                "clicks_by_payload": {"promo-more": 2, "Not now": 1}}
    assert expected["sent"] == 12 and 0 < expected["read"] and expected["delivered"] < 12, expected  # a mix

    def funnel():
        stats = marketer.stats(campaign_id)
        return {key: stats[key] for key in expected}

    try:
        wait_for(lambda: funnel() == expected, timeout=SLOW, interval=0.3, what="the funnel to match the sandbox")
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}: {funnel()} != {expected}") from None
    stats = marketer.stats(campaign_id)
    assert stats["rates"]["replied"] == round(5 / 12, 4) and stats["rates"]["clicked"] == round(3 / 12, 4)
    assert collections.Counter(item["status"] for item in marketer.recipients(campaign_id)) == {
        status: count for status, count in (("sent", expected["sent"] - expected["delivered"]),
                                            ("delivered", expected["delivered"] - expected["read"]),
                                            ("read", expected["read"])) if count}
