"""Everything the sandbox remembers, in memory, behind one lock.

Handlers and the background scheduler both take `SandboxState.lock` around every read-modify-write;
nothing here does I/O. `reset()` returns to the configuration the app was created with.
"""

from __future__ import annotations

import base64
import collections
import copy
import os
import random
import re
import secrets
import threading
import time
from dataclasses import dataclass, field

from sandbox.errors import CATALOGUE

DAY = 24 * 3600
WINDOW_SECONDS = DAY  # customer-service window
FREE_ENTRY_POINT_SECONDS = 72 * 3600
UPLOADED_MEDIA_TTL = 30 * DAY
INBOUND_MEDIA_TTL = 7 * DAY

# Messaging-limit tiers: unique users reached outside a window per moving 24 h (None = unlimited).
TIERS: dict[str, int | None] = {
    "TIER_50": 50,
    "TIER_250": 250,
    "TIER_1K": 1000,
    "TIER_2K": 2000,
    "TIER_10K": 10000,
    "TIER_100K": 100000,
    "TIER_UNLIMITED": None,
}
QUALITY_RATINGS = ("GREEN", "YELLOW", "RED", "NA", "UNKNOWN")
AUTO_STATUSES = ("sent", "delivered", "read")

DEFAULT_CONFIG = {
    "seed": 0,
    "template_review_seconds": 1.0,
    "webhook_retry_delays": [0.2, 1.0, 5.0],  # one retry per entry, so 4 attempts in all
    "webhook_timeout_seconds": 5.0,
    "log_limit": 10000,
}
DEFAULT_AI = {"answers": {}, "default_answer": None, "fail": None, "latency_ms": 0, "hang_seconds": 30.0}
DEFAULT_FAULTS = {
    "latency_ms": 0,
    "error_5xx_rate": 0.0,
    "rate_limit_rate": 0.0,
    "webhook_drop_rate": 0.0,
    "fail_texts_once": (),  # text bodies whose next send answers 131000 (a transient server error), once each
    # Sends to these recipients (wa_id digits) answer a Meta error: {"code", "times" (None: always), "async"}.
    "recipient_errors": {},
    # Until this sandbox-clock time every send answers 130429 (set as "rate_limit_storm_seconds": N).
    "rate_limit_storm_until": 0.0,
}


class ConfigError(ValueError):
    """A control-API payload the sandbox cannot accept (answered as HTTP 400)."""


class Clock:
    """Wall time that tests can advance or freeze, so 24-hour windows need no sleeping."""

    def __init__(self):
        self._offset = 0.0
        self._frozen_at: float | None = None

    def now(self) -> float:
        return self._frozen_at if self._frozen_at is not None else time.time() + self._offset

    def advance(self, seconds: float) -> None:
        if self._frozen_at is not None:
            self._frozen_at += seconds
        else:
            self._offset += seconds

    def freeze(self) -> None:
        self._frozen_at = self.now()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            self._offset = self._frozen_at - time.time()
            self._frozen_at = None

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None


def digits(phone: str) -> str:
    return re.sub(r"\D", "", phone)


def new_wamid() -> str:
    # Meta's ids are base64 of a small binary record; the first bytes give them the familiar "HBgL" start.
    return "wamid." + base64.b64encode(b"\x1c\x18\x0b" + os.urandom(30)).decode()


def new_numeric_id(taken) -> str:
    while True:
        candidate = str(10**15 + secrets.randbelow(9 * 10**15))
        if candidate not in taken:
            return candidate


def _rate(value) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ConfigError("rates are between 0 and 1")
    return value


def _positive(value) -> float:
    value = float(value)
    if value <= 0:
        raise ConfigError("must be positive")
    return value


def _non_negative(value) -> float:
    value = float(value)
    if value < 0:
        raise ConfigError("must not be negative")
    return value


def _choice(options):
    def coerce(value):
        if value not in options:
            raise ConfigError(f"must be one of {', '.join(options)}")
        return value

    return coerce


def _phone_list(value) -> set[str]:
    if not isinstance(value, list):
        raise ConfigError("must be a list of phone numbers")
    return {digits(str(item)) for item in value}


def _wa_id_map(value) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError("must map input digits to wa_id")
    return {digits(str(k)): digits(str(v)) for k, v in value.items()}


def _statuses(value) -> list[str]:
    if not isinstance(value, list) or any(item not in AUTO_STATUSES for item in value):
        raise ConfigError(f"must be a list drawn from {', '.join(AUTO_STATUSES)}")
    return [status for status in AUTO_STATUSES if status in value]


def _delays(value) -> dict[str, float]:
    if not isinstance(value, dict) or any(key not in (*AUTO_STATUSES, "failed") for key in value):
        raise ConfigError("must map sent/delivered/read/failed to seconds")
    return {key: _non_negative(seconds) for key, seconds in value.items()}


def _text(value) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError("must be a non-empty string")
    return value


def _optional_text(value) -> str | None:
    return None if value is None else _text(value)


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise ConfigError("must be true or false")
    return value


def _int_code(value) -> int:
    if value not in CATALOGUE:
        raise ConfigError("must be an error code the sandbox knows")
    return value


def _recipient_errors(value) -> dict[str, dict]:
    """{"<wa_id or +e164>": {"code": 131049, "times": 1, "async": false}} keyed by digits; checked."""
    if not isinstance(value, dict):
        raise ConfigError("recipient_errors must map a recipient's phone to {code, times, async}")
    checked = {}
    for phone, spec in value.items():
        if not isinstance(spec, dict) or set(spec) - {"code", "times", "async"}:
            raise ConfigError(f"recipient_errors[{phone}] takes code, times (null: always) and async")
        times = spec.get("times")
        if times is not None and (not isinstance(times, int) or isinstance(times, bool) or times < 1):
            raise ConfigError(f"recipient_errors[{phone}].times must be a positive whole number or null")
        try:
            code = _int_code(spec.get("code"))
            is_async = _flag(spec.get("async", False))
        except ConfigError as exc:
            raise ConfigError(f"recipient_errors[{phone}]: {exc}") from None
        checked[digits(str(phone))] = {"code": code, "times": times, "async": is_async}
    return checked


def checked_config(current: dict, changes: dict) -> dict:
    """`current` with the global settings in `changes` applied, each one checked."""
    unknown = set(changes) - set(DEFAULT_CONFIG)
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    updated = copy.deepcopy(current)
    try:
        for name, value in changes.items():
            if name == "webhook_retry_delays":
                if not isinstance(value, list):
                    raise ConfigError("webhook_retry_delays must be a list of seconds")
                updated[name] = [_non_negative(item) for item in value]
            elif name == "seed":
                updated[name] = int(value)
            elif name == "log_limit":
                updated[name] = int(_positive(value))
            else:
                updated[name] = _non_negative(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from None
    return updated


# Control-API fields of a number, with the coercion each value goes through.
NUMBER_FIELDS = {
    "waba_id": _text,
    "business_id": _text,
    "display_phone_number": lambda v: digits(_text(v)),
    "verified_name": _text,
    "access_token": _text,
    "app_secret": _text,
    "callback_url": _optional_text,
    "verify_token": _optional_text,
    "quality_rating": _choice(QUALITY_RATINGS),
    "status": _text,
    "messaging_limit_tier": _choice(tuple(TIERS)),
    "throughput_mps": _positive,
    "pair_rate_interval_seconds": _positive,
    "pair_rate_burst": lambda v: int(_positive(v)),
    "undeliverable": _phone_list,
    "wa_id_map": _wa_id_map,
    "auto_statuses": _statuses,
    "webhook_delays": _delays,
    "duplicate_rate": _rate,
    "reorder_rate": _rate,
    "async_window_errors": _flag,
    "messaging_limit_error_code": _int_code,
}
REQUIRED_NUMBER_FIELDS = ("phone_number_id", "waba_id", "display_phone_number", "access_token", "app_secret")


@dataclass
class Number:
    phone_number_id: str
    waba_id: str
    business_id: str
    display_phone_number: str
    access_token: str
    app_secret: str
    verified_name: str = "Sandbox Business"
    callback_url: str | None = None
    verify_token: str | None = None
    quality_rating: str = "GREEN"
    status: str = "CONNECTED"
    throughput_mps: float = 80.0
    pair_rate_interval_seconds: float = 6.0
    pair_rate_burst: int = 45
    undeliverable: set[str] = field(default_factory=set)
    wa_id_map: dict[str, str] = field(default_factory=dict)
    auto_statuses: list[str] = field(default_factory=lambda: list(AUTO_STATUSES))
    webhook_delays: dict[str, float] = field(default_factory=dict)
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    async_window_errors: bool = False
    messaging_limit_error_code: int = 131048
    # Send times inside the last second, for the throughput limit.
    recent_messages: collections.deque = field(default_factory=collections.deque, repr=False)

    def describe(self, tier: str) -> dict:
        return {
            "phone_number_id": self.phone_number_id,
            **{name: getattr(self, name) for name in NUMBER_FIELDS if name != "messaging_limit_tier"},
            "undeliverable": sorted(self.undeliverable),
            "messaging_limit_tier": tier,
        }


@dataclass
class Portfolio:
    """A business portfolio: the messaging limit is shared by all its numbers."""

    business_id: str
    tier: str = "TIER_UNLIMITED"
    # wa_id -> last business-initiated reach, oldest first
    reached: collections.OrderedDict = field(default_factory=collections.OrderedDict)


@dataclass
class Customer:
    """One (number, user) pair: service window, free-entry-point window and pair-rate state."""

    last_inbound_at: float | None = None
    referral_at: float | None = None
    free_entry_until: float = 0.0
    pair_burst_started: float = float("-inf")
    pair_burst_count: int = 0
    pair_debt_until: float = float("-inf")
    conversation_id: str | None = None  # the legacy conversation object of status webhooks
    conversation_expires: float = 0.0

    def window_open(self, now: float) -> bool:
        return self.last_inbound_at is not None and now - self.last_inbound_at < WINDOW_SECONDS


TEMPLATE_QUALITY_SCORES = ("GREEN", "YELLOW", "RED", "UNKNOWN")


@dataclass
class Template:
    id: str
    waba_id: str
    name: str
    language: str
    category: str
    components: list
    parameter_format: str = "POSITIONAL"
    status: str = "PENDING"
    rejected_reason: str = "NONE"
    created_at: float = 0.0
    quality_score: str = "UNKNOWN"  # Meta rates every new template UNKNOWN until it has feedback
    quality_date: float = 0.0
    previous_category: str | None = None  # set by Meta only after it re-categorised the template

    def describe(self) -> dict:
        """The template as Graph answers it; a field Meta leaves unset is absent, not null."""
        described = {
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": copy.deepcopy(self.components),
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
            "rejected_reason": self.rejected_reason,
            "quality_score": {"score": self.quality_score, "date": int(self.quality_date or self.created_at)},
        }
        if self.previous_category is not None:
            described["previous_category"] = self.previous_category
        return described


@dataclass
class Media:
    id: str
    phone_number_id: str
    waba_id: str
    mime_type: str
    data: bytes
    sha256: str
    expires_at: float
    filename: str | None = None


@dataclass
class SentMessage:
    wamid: str
    phone_number_id: str
    to: str
    wa_id: str
    type: str
    request: dict
    created_at: float
    biz_opaque_callback_data: str | None = None
    template_category: str | None = None
    pricing: dict | None = None
    conversation: dict | None = None
    failure: dict | None = None  # async error item when the message fails
    statuses: list = field(default_factory=list)  # [(status, timestamp)] as scheduled

    def describe(self) -> dict:
        return {
            "id": self.wamid,
            "phone_number_id": self.phone_number_id,
            "to": self.to,
            "wa_id": self.wa_id,
            "type": self.type,
            "request": self.request,
            "timestamp": str(int(self.created_at)),
            "biz_opaque_callback_data": self.biz_opaque_callback_data,
            "pricing": self.pricing,
            "failure": self.failure,
            "statuses": [{"status": status, "timestamp": ts} for status, ts in self.statuses],
        }


@dataclass
class InboundMessage:
    wamid: str
    phone_number_id: str
    wa_id: str
    message: dict
    read: bool = False

    def describe(self) -> dict:
        return {"phone_number_id": self.phone_number_id, "read": self.read, "message": self.message}


class SandboxState:
    def __init__(self, config: dict | None = None):
        self.lock = threading.RLock()
        self.clock = Clock()
        self.url_key = secrets.token_bytes(32)  # signs media download URLs
        self.epoch = 0  # bumped by reset, so stale background work can tell it is stale
        self.initial_config = copy.deepcopy(config or {})
        self.reset()

    def reset(self) -> None:
        with self.lock:
            initial = self.initial_config
            self.config = checked_config(DEFAULT_CONFIG, {k: v for k, v in initial.items() if k in DEFAULT_CONFIG})
            self.faults = {**DEFAULT_FAULTS}
            self.ai = copy.deepcopy(DEFAULT_AI)  # the chat-completions stand-in's answers (sandbox/ai.py)
            self.rng = random.Random(self.config["seed"])
            self.clock = Clock()
            self.epoch += 1
            self.numbers: dict[str, Number] = {}
            self.portfolios: dict[str, Portfolio] = {}
            self.customers: dict[tuple[str, str], Customer] = {}
            self.templates: dict[str, Template] = {}
            self.media: dict[str, Media] = {}
            self.sent: dict[str, SentMessage] = {}
            self.inbound: dict[str, InboundMessage] = {}
            limit = self.config["log_limit"]
            self.sent_order: collections.deque = collections.deque(maxlen=limit)
            self.requests: collections.deque = collections.deque(maxlen=limit)
            self.webhooks: collections.deque = collections.deque(maxlen=limit)
            self.set_faults(initial.get("faults", {}))

    # numbers ---------------------------------------------------------------

    def configure_number(self, data: dict, *, partial: bool = False, phone_number_id: str | None = None) -> Number:
        """Register a number (replacing any with that id) or, with partial=True, change some of its knobs."""
        if not isinstance(data, dict):
            raise ConfigError("expected a JSON object")
        unknown = set(data) - set(NUMBER_FIELDS) - {"phone_number_id"}
        if unknown:
            raise ConfigError(f"unknown fields: {', '.join(sorted(unknown))}")
        values = {}
        for name, value in data.items():
            if name == "phone_number_id":
                continue
            try:
                values[name] = NUMBER_FIELDS[name](value)
            except (ConfigError, TypeError, ValueError) as exc:
                raise ConfigError(f"{name}: {exc}") from None
        tier = values.pop("messaging_limit_tier", None)
        if partial:
            number = self.numbers[phone_number_id]
            for name, value in values.items():
                setattr(number, name, value)
        else:
            missing = [name for name in REQUIRED_NUMBER_FIELDS if not data.get(name)]
            if missing:
                raise ConfigError(f"missing fields: {', '.join(missing)}")
            values.setdefault("business_id", values["waba_id"])
            number = Number(phone_number_id=str(data["phone_number_id"]), **values)
            self.numbers[number.phone_number_id] = number
        portfolio = self.portfolios.setdefault(number.business_id, Portfolio(number.business_id))
        if tier is not None:
            portfolio.tier = tier
        return number

    def portfolio_of(self, number: Number) -> Portfolio:
        return self.portfolios.setdefault(number.business_id, Portfolio(number.business_id))

    def numbers_of_waba(self, waba_id: str) -> list[Number]:
        return [number for number in self.numbers.values() if number.waba_id == waba_id]

    def customer(self, phone_number_id: str, wa_id: str) -> Customer:
        return self.customers.setdefault((phone_number_id, wa_id), Customer())

    # settings --------------------------------------------------------------

    def set_config(self, data: dict) -> None:
        updated = checked_config(self.config, data)
        if "seed" in data:
            self.rng = random.Random(updated["seed"])
        if updated["log_limit"] != self.config["log_limit"]:
            limit = updated["log_limit"]
            self.requests = collections.deque(self.requests, maxlen=limit)
            self.webhooks = collections.deque(self.webhooks, maxlen=limit)
            self.sent_order = collections.deque(self.sent_order, maxlen=limit)
            self.sent = {wamid: self.sent[wamid] for wamid in self.sent_order if wamid in self.sent}
        self.config = updated

    def set_faults(self, data: dict) -> None:
        unknown = set(data) - set(DEFAULT_FAULTS) - {"seed", "rate_limit_storm_seconds"}
        if unknown:
            raise ConfigError(f"unknown faults: {', '.join(sorted(unknown))}")
        updated = dict(self.faults)
        try:
            for name, value in data.items():
                if name == "seed":
                    continue
                if name == "fail_texts_once":
                    updated[name] = tuple(str(body) for body in value)
                elif name == "recipient_errors":
                    updated[name] = _recipient_errors(value)
                elif name == "rate_limit_storm_seconds":
                    seconds = _non_negative(value)
                    updated["rate_limit_storm_until"] = self.clock.now() + seconds if seconds else 0.0
                elif name == "rate_limit_storm_until":
                    updated[name] = _non_negative(value)
                else:
                    updated[name] = _non_negative(value) if name == "latency_ms" else _rate(value)
            if "seed" in data:
                self.rng = random.Random(int(data["seed"]))
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        self.faults = updated

    # logs ------------------------------------------------------------------

    def record_sent(self, message: SentMessage) -> None:
        if len(self.sent_order) == self.sent_order.maxlen:
            self.sent.pop(self.sent_order[0], None)
        self.sent[message.wamid] = message
        self.sent_order.append(message.wamid)
