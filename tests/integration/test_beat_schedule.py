"""Beat drives time: trial expiry runs on the maintenance pool by itself, and only once per organization."""

import datetime as dt
import time

import pytest

from shared import events
from shared.db import unit_of_work
from shared.models import Organization, SubscriptionStatus
from shared.models.base import utcnow
from tests.integration.conftest import wait_for

pytestmark = pytest.mark.integration


def test_beat_expires_an_ended_trial_exactly_once(worker, beat, committed):
    with unit_of_work() as session:
        org = Organization(name="Trial ended", plan_code="starter", trial_ends_at=utcnow() - dt.timedelta(hours=1))
        session.add(org)
        session.flush()
        org_id = org.id

    def status():
        with unit_of_work() as session:
            return session.get(Organization, org_id).subscription_status

    wait_for(lambda: status() == SubscriptionStatus.expired, timeout=30, what="beat to expire the trial")
    time.sleep(3)  # several more beats run over the same organization
    trail = events.events_for(org_id=org_id, subject_type="organization", subject_id=org_id)
    assert [e["event"] for e in trail].count("organizations.trial_expired") == 1
    assert "maintenance.expire_trials" in beat.log()
