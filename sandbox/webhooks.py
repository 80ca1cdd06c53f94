"""Webhooks the sandbox sends: Meta's envelopes, the signature headers, and delivery with bounded retries.

Delivery runs on the scheduler thread, never in the request that caused it. Every webhook is recorded
(`GET /_sandbox/webhooks`) with its raw body, signature, attempts and outcome: pending, delivered,
failed (retries exhausted), dropped (fault knob) or no_callback (the number has no callback URL).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time

from sandbox.callbacks import DELIVERY_ERRORS, CallbackClient
from sandbox.scheduler import Scheduler
from sandbox.state import TIERS, Number, SandboxState, SentMessage, Template

USER_AGENT = "facebookexternalua"


def serialize(payload: dict) -> bytes:
    # Meta escapes non-ASCII as \uXXXX; receivers must verify the raw bytes, not a re-serialisation.
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode()


def signature_256(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def envelope(entries: list[tuple[str, str, dict]], *, time_field: float | None = None) -> dict:
    """Group (waba_id, field, value) triples into Meta's object/entry/changes envelope."""
    grouped: dict[str, dict] = {}
    for waba_id, field, value in entries:
        entry = grouped.get(waba_id)
        if entry is None:
            entry = grouped[waba_id] = {"id": waba_id, "changes": []}
            if time_field is not None:
                entry["time"] = int(time_field)
        entry["changes"].append({"value": value, "field": field})
    return {"object": "whatsapp_business_account", "entry": list(grouped.values())}


def messages_value(number: Number, *, contacts=None, messages=None, statuses=None) -> dict:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": number.display_phone_number, "phone_number_id": number.phone_number_id},
    }
    if contacts:
        value["contacts"] = contacts
    if messages:
        value["messages"] = messages
    if statuses:
        value["statuses"] = statuses
    return value


def status_object(message: SentMessage, status: str, timestamp: str, *, errors: list | None = None) -> dict:
    item = {"id": message.wamid, "status": status, "timestamp": timestamp, "recipient_id": message.wa_id}
    if message.biz_opaque_callback_data is not None:
        item["biz_opaque_callback_data"] = message.biz_opaque_callback_data
    # Pricing and the legacy conversation object come with sent/delivered; expiration only on the first.
    if status in ("sent", "delivered") and message.pricing is not None:
        conversation = dict(message.conversation)
        if status != "sent":
            conversation.pop("expiration_timestamp", None)
        item["conversation"] = conversation
        item["pricing"] = dict(message.pricing)
    if status == "failed":
        item["errors"] = errors or [message.failure]
    return item


def template_status_value(template: Template, event: str, reason: str) -> dict:
    value = {
        "event": event,
        "message_template_id": int(template.id),
        "message_template_name": template.name,
        "message_template_language": template.language,
        "reason": reason,
        "message_template_category": template.category,
    }
    if event == "REJECTED":
        value["rejection_info"] = {
            "reason": reason,
            "recommendation": "Sandbox rule: template names containing 'reject' are rejected.",
        }
    return value


def quality_value(number: Number, event: str, old_tier: str, new_tier: str) -> dict:
    value = {"display_phone_number": number.display_phone_number, "event": event}
    if old_tier != new_tier:
        value["old_limit"] = old_tier
    value["current_limit"] = new_tier
    if TIERS[new_tier] is not None:
        value["max_daily_conversations_per_business"] = TIERS[new_tier]
    return value


def described(record: dict) -> dict:
    """A webhook record as `GET /_sandbox/webhooks` shows it: with its payload, and its attempts so far."""
    return {"id": record["id"], "field": record["field"], "phone_number_id": record["phone_number_id"],
            "url": record["url"], "payload": json.loads(record["body"]), "body": record["body"],
            "signature": record["signature"], "attempts": list(record["attempts"]), "outcome": record["outcome"],
            "duplicate_of": record["duplicate_of"]}


class WebhookSender:
    """Queues signed POSTs to callback URLs. Methods that schedule expect `state.lock` to be held."""

    def __init__(self, state: SandboxState, scheduler: Scheduler):
        self.state = state
        self.scheduler = scheduler
        self._ids = itertools.count(1)
        self._client = CallbackClient()

    def close(self) -> None:
        self._client.close()

    # scheduling ------------------------------------------------------------

    def to_number(self, number: Number, payload: dict, *, field: str, delay: float = 0.0) -> None:
        self._enqueue(number.callback_url, number.app_secret, payload, field=field, delay=delay,
                      phone_number_id=number.phone_number_id, duplicate_rate=number.duplicate_rate)

    def to_waba(self, waba_id: str, payload: dict, *, field: str, delay: float = 0.0) -> None:
        """WABA-level events go once to each distinct (callback URL, app secret) among the WABA's numbers."""
        targets = {(n.callback_url, n.app_secret): n for n in self.state.numbers_of_waba(waba_id)}
        for (url, secret), number in targets.items():
            self._enqueue(url, secret, payload, field=field, delay=delay, phone_number_id=None,
                          duplicate_rate=number.duplicate_rate)

    def to_target(self, url: str | None, secret: str, payload: dict, *, field: str) -> None:
        self._enqueue(url, secret, payload, field=field, delay=0.0, phone_number_id=None, duplicate_rate=0.0)

    def statuses_for(self, number: Number, message: SentMessage, now: float) -> None:
        """Schedule the status webhooks of a message just accepted, applying the number's knobs."""
        delays = number.webhook_delays
        if message.failure is not None:
            plan = [("failed", delays.get("failed", delays.get("sent", 0.0)))]
        else:
            plan, latest = [], 0.0
            for status in number.auto_statuses:
                latest = max(latest, delays.get(status, 0.0))  # a later status never gets an earlier time
                plan.append((status, latest))
        arrival = [status for status, _ in plan]
        if "delivered" in arrival and "read" in arrival and self._roll(number.reorder_rate):
            d, r = arrival.index("delivered"), arrival.index("read")
            arrival[d], arrival[r] = arrival[r], arrival[d]
        logical = dict(plan)
        for status, (_, due) in zip(arrival, plan):
            timestamp = str(int(now + logical[status]))
            message.statuses.append((status, timestamp))
            value = messages_value(number, statuses=[status_object(message, status, timestamp)])
            self.to_number(number, envelope([(number.waba_id, "messages", value)]), field="messages", delay=due)

    def _roll(self, rate: float) -> bool:
        # Draw only when a knob is set, so unrelated knobs do not shift a seeded sequence.
        return rate > 0 and self.state.rng.random() < rate

    def _enqueue(self, url, secret, payload, *, field, delay, phone_number_id, duplicate_rate) -> None:
        body = serialize(payload)
        # No "payload": the log holds up to log_limit records, and a payload's tree of objects kept for each
        # cost more to collect (gc) and free than parsing the body back when the log is read (`described`).
        record = {
            "id": next(self._ids),
            "field": field,
            "phone_number_id": phone_number_id,
            "url": url,
            "body": body.decode(),
            "signature": signature_256(body, secret),
            "attempts": [],
            "outcome": "pending",
            "duplicate_of": None,
        }
        records = [record]
        if self._roll(duplicate_rate):
            records.append({**record, "id": next(self._ids), "attempts": [], "duplicate_of": record["id"]})
        for item in records:
            self.state.webhooks.append(item)
            if url is None:
                item["outcome"] = "no_callback"
            elif self._roll(self.state.faults["webhook_drop_rate"]):
                item["outcome"] = "dropped"
            else:
                self._schedule_attempt(item, delay)

    def _schedule_attempt(self, record: dict, delay: float) -> None:
        epoch = self.state.epoch
        self.scheduler.call_later(delay, lambda: self._attempt(record, epoch))

    # delivery (scheduler thread) -------------------------------------------

    def _attempt(self, record: dict, epoch: int) -> None:
        with self.state.lock:
            if epoch != self.state.epoch:
                return  # the sandbox was reset meanwhile
            timeout = self.state.config["webhook_timeout_seconds"]
            retry_delays = list(self.state.config["webhook_retry_delays"])
        body = record["body"].encode()
        headers = {
            "Accept": "*/*",
            "Accept-Encoding": "deflate, gzip",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Hub-Signature-256": record["signature"],
        }
        started = time.time()
        try:
            status_code = self._client.post(record["url"], body, headers, timeout)
            attempt = {"at": started, "status_code": status_code}
            delivered = status_code == 200  # Meta retries anything but 200
        except DELIVERY_ERRORS as exc:
            attempt = {"at": started, "error": f"{type(exc).__name__}: {exc}"}
            delivered = False
        with self.state.lock:
            if epoch != self.state.epoch:
                return
            record["attempts"].append(attempt)
            if delivered:
                record["outcome"] = "delivered"
            elif len(record["attempts"]) <= len(retry_delays):
                self._schedule_attempt(record, retry_delays[len(record["attempts"]) - 1])
            else:
                record["outcome"] = "failed"
