"""A task that finishes as the Redis broker goes away must not take its worker down with its ack."""

from __future__ import annotations

from types import SimpleNamespace

from kombu.transport.redis import Channel

from workers.acks import BrokerResetSafeRequest
from workers.app import app


def detached_ack(logger, errors, *rest):
    # What kombu's Redis channel does once the consumer's reconnect has detached it from its connection.
    channel = Channel.__new__(Channel)
    channel.connection = SimpleNamespace(client=None)
    channel._connparams()


def request(**callbacks) -> BrokerResetSafeRequest:
    import workers.tasks.bots  # noqa: F401 (the task the message names)

    message = SimpleNamespace(headers={"id": "t-1", "task": "bots.step"}, body=b"[]", content_type="application/json",
                              content_encoding="utf-8", payload=((), {}, {}),
                              delivery_info={"exchange": "bots", "routing_key": "bots", "priority": 0, "redelivered": False},
                              properties={})
    return BrokerResetSafeRequest(message, app=app, **callbacks)


def test_the_detached_channel_raises_what_the_request_guards_against():
    try:
        detached_ack(None, ())
    except AttributeError as exc:
        assert "hostname" in str(exc)
    else:
        raise AssertionError("kombu no longer fails this way: workers/acks.py may be unneeded")


def test_an_ack_lost_with_the_broker_is_dropped_and_the_worker_goes_on():
    req = request(on_ack=detached_ack)
    req.acknowledge()  # the plain celery Request raises AttributeError here, and the worker's loop dies
    assert req.acknowledged


def test_a_reject_lost_with_the_broker_is_dropped_too():
    req = request(on_reject=detached_ack)
    req.reject(requeue=True)
    assert req.acknowledged


def test_every_task_of_the_workers_uses_it():
    import workers.tasks.bots  # noqa: F401
    import workers.tasks.sends  # noqa: F401

    assert {app.tasks[name].Request for name in ("bots.step", "sends.dispatch_number")} == {
        "workers.acks:BrokerResetSafeRequest"}
