"""A task request whose ack survives a broker reset.

With acks_late, a task finishing just as the Redis broker goes away acks on a channel kombu has
already detached from its connection; kombu (5.7) then raises AttributeError ('NoneType' object has
no attribute 'hostname') instead of a connection error, and the worker's event loop dies with it:
the whole pool exits. Here that ack is logged and dropped: the message was not acked, so the broker
delivers it again and the task, idempotent like every task here, changes nothing the second time.
"""

from celery.worker.request import Request

import structlog

log = structlog.get_logger(__name__)


class BrokerResetSafeRequest(Request):
    def acknowledge(self):
        try:
            super().acknowledge()
        except AttributeError:
            self.acknowledged = True
            log.warning("worker.ack_lost_with_broker", task_id=self.id, task=self.name)

    def reject(self, requeue=False):
        try:
            super().reject(requeue=requeue)
        except AttributeError:
            self.acknowledged = True
            log.warning("worker.reject_lost_with_broker", task_id=self.id, task=self.name)
