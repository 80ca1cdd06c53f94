"""One typed settings object, parsed from the environment once per process.

Web, workers, beat, Flower, Alembic and the embedded-engine launcher all read it
through `get_settings()`. Tests build their own with `Settings.from_env({...})`
and install it with `use_settings()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

DEFAULT_SECRET_KEY = "dev-insecure-change-me-do-not-use-in-production"
PRODUCTION_ENVIRONMENTS = frozenset({"production", "prod"})
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(RuntimeError):
    """The environment cannot make a valid configuration; the message says why."""


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True, kw_only=True)
class Settings:
    environment: str = "development"
    debug: bool = False
    secret_key: str = DEFAULT_SECRET_KEY

    # None means "start the embedded engine" (see shared/embedded.py).
    database_url: str | None = None
    redis_url: str | None = None
    broker_url: str | None = None  # Celery's broker; None: the Redis of redis_url
    mongodb_url: str | None = None
    mongodb_database: str = "pytake"
    # After a failed event-log write, a process skips MongoDB this long and keeps new lines in the
    # PostgreSQL backlog (shared/event_backlog.py), so no write waits out pymongo's timeouts meanwhile.
    event_store_retry_seconds: float = 30.0

    password_hash_rounds: int = 12  # bcrypt cost; tests lower it, production keeps 12 or more
    access_token_expire_minutes: int = 15
    refresh_token_expire_days: int = 7
    api_v1_prefix: str = "/api/v1"
    cors_origins: tuple[str, ...] = ()
    # Hosts or networks (CIDR) inside private ranges that tenant-given URLs may still reach (shared/public_urls.py).
    outbound_allowed_hosts: tuple[str, ...] = ()
    max_request_bytes: int = 1_048_576
    max_upload_bytes: int = 100 * 1_048_576

    flower_user: str = "admin"
    flower_password: str = "pytake"

    data_dir: Path = field(default_factory=lambda: PROJECT_ROOT / "var")
    storage_dir: Path | None = None  # files (imports, reports, exports); default: <data_dir>/files
    download_link_ttl_seconds: int = 24 * 3600
    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON in production, readable otherwise

    # WhatsApp: Meta's Graph API in production; the local sandbox (python -m sandbox) otherwise.
    whatsapp_api_base: str | None = None
    sandbox_port: int = 8090  # where `make run` starts the sandbox; the Graph base outside production follows it
    whatsapp_api_version: str = "v24.0"
    # Fernet keys for secrets at rest (access tokens, app secrets); the first encrypts, all decrypt,
    # so a new key is added in front and old ones stay until `python -m shared.cli rotate-secrets` ran.
    encryption_keys: tuple[str, ...] = ()
    # Verify token for Meta's webhook subscription handshake (GET /api/v1/webhooks/whatsapp).
    whatsapp_verify_token: str | None = None
    # The Meta app's secret, when all numbers share one app (checked besides each number's own).
    whatsapp_app_secret: str | None = None

    # Intent-record sweep: a job still queued this long after its last publish is re-enqueued.
    job_requeue_after_seconds: int = 120
    job_max_attempts: int = 3
    sweep_interval_seconds: float = 30.0
    trial_expiry_interval_seconds: float = 300.0
    task_soft_time_limit_seconds: int = 300
    task_time_limit_seconds: int = 360
    ping_timeout_seconds: float = 5.0
    # A message still `sending` this long after its claim lost its worker: it becomes `unknown` (it may
    # have reached Meta) and its status webhook settles it. Well above the Graph timeouts (3 s + 15 s).
    send_lease_seconds: int = 60
    # After Meta's 131026 (undeliverable) for a contact on a number, marketing to them there waits this long.
    unreachable_hours: int = 72
    # Bots: quiet time after a customer's newest message before the bot steps, so a burst gets one answer;
    # how often beat looks for due question timeouts and lost outside calls; a session waiting this long
    # for an answer without a timeout of its own ends (counted as dropped); extra time an outside call
    # gets past its own timeout before it counts as lost.
    bot_burst_seconds: float = 0.5
    bot_due_interval_seconds: float = 5.0
    bot_idle_expiry_seconds: int = 86_400
    bot_call_grace_seconds: int = 30
    # Campaigns: a running campaign's drip takes a turn this often; beat starts scheduled campaigns and
    # resumes a drip whose last turn is older than CAMPAIGN_STALE_SECONDS (its worker died), every interval.
    campaign_tick_seconds: float = 1.0
    campaign_sweep_interval_seconds: float = 5.0
    campaign_stale_seconds: float = 20.0
    # Meta's per-message rates by market, for campaign cost estimates (shared/campaigns/pricing.py); dated,
    # so a new rate card is a new file here or PRICE_TABLE_PATH pointing at one.
    price_table_path: Path = field(default_factory=lambda: PROJECT_ROOT / "shared" / "campaigns" / "price_table.json")
    # Extra task modules a worker imports (the integration tests load their probe tasks this way).
    extra_task_modules: tuple[str, ...] = ()

    @property
    def is_production(self) -> bool:
        return self.environment.lower() in PRODUCTION_ENVIRONMENTS

    @property
    def graph_api_base(self) -> str:
        if self.whatsapp_api_base:
            return self.whatsapp_api_base.rstrip("/")
        return "https://graph.facebook.com" if self.is_production else f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def broker(self) -> str | None:
        """Celery's broker: BROKER_URL, or the Redis that also holds the cache, leases and rate limits."""
        return self.broker_url or self.redis_url

    @property
    def json_logs(self) -> bool:
        return self.is_production if self.log_json is None else self.log_json

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        parsers = {
            "ENVIRONMENT": ("environment", str),
            "DEBUG": ("debug", _bool),
            "SECRET_KEY": ("secret_key", str),
            "DATABASE_URL": ("database_url", str),
            "REDIS_URL": ("redis_url", str),
            "BROKER_URL": ("broker_url", str),
            "MONGODB_URL": ("mongodb_url", str),
            "MONGODB_DATABASE": ("mongodb_database", str),
            "EVENT_STORE_RETRY_SECONDS": ("event_store_retry_seconds", float),
            "PASSWORD_HASH_ROUNDS": ("password_hash_rounds", int),
            "ACCESS_TOKEN_EXPIRE_MINUTES": ("access_token_expire_minutes", int),
            "REFRESH_TOKEN_EXPIRE_DAYS": ("refresh_token_expire_days", int),
            "API_V1_PREFIX": ("api_v1_prefix", str),
            "CORS_ORIGINS": ("cors_origins", _csv),
            "OUTBOUND_ALLOWED_HOSTS": ("outbound_allowed_hosts", _csv),
            "MAX_REQUEST_BYTES": ("max_request_bytes", int),
            "MAX_UPLOAD_BYTES": ("max_upload_bytes", int),
            "FLOWER_USER": ("flower_user", str),
            "FLOWER_PASSWORD": ("flower_password", str),
            "PYTAKE_DATA_DIR": ("data_dir", Path),
            "STORAGE_DIR": ("storage_dir", Path),
            "DOWNLOAD_LINK_TTL_SECONDS": ("download_link_ttl_seconds", int),
            "LOG_LEVEL": ("log_level", str),
            "LOG_JSON": ("log_json", _bool),
            "JOB_REQUEUE_AFTER_SECONDS": ("job_requeue_after_seconds", int),
            "JOB_MAX_ATTEMPTS": ("job_max_attempts", int),
            "SWEEP_INTERVAL_SECONDS": ("sweep_interval_seconds", float),
            "TRIAL_EXPIRY_INTERVAL_SECONDS": ("trial_expiry_interval_seconds", float),
            "TASK_SOFT_TIME_LIMIT_SECONDS": ("task_soft_time_limit_seconds", int),
            "TASK_TIME_LIMIT_SECONDS": ("task_time_limit_seconds", int),
            "PING_TIMEOUT_SECONDS": ("ping_timeout_seconds", float),
            "SEND_LEASE_SECONDS": ("send_lease_seconds", int),
            "UNREACHABLE_HOURS": ("unreachable_hours", int),
            "BOT_BURST_SECONDS": ("bot_burst_seconds", float),
            "BOT_DUE_INTERVAL_SECONDS": ("bot_due_interval_seconds", float),
            "BOT_IDLE_EXPIRY_SECONDS": ("bot_idle_expiry_seconds", int),
            "BOT_CALL_GRACE_SECONDS": ("bot_call_grace_seconds", int),
            "CAMPAIGN_TICK_SECONDS": ("campaign_tick_seconds", float),
            "CAMPAIGN_SWEEP_INTERVAL_SECONDS": ("campaign_sweep_interval_seconds", float),
            "CAMPAIGN_STALE_SECONDS": ("campaign_stale_seconds", float),
            "PRICE_TABLE_PATH": ("price_table_path", Path),
            "PYTAKE_EXTRA_TASK_MODULES": ("extra_task_modules", _csv),
            "WHATSAPP_API_BASE": ("whatsapp_api_base", str),
            "SANDBOX_PORT": ("sandbox_port", int),
            "WHATSAPP_API_VERSION": ("whatsapp_api_version", str),
            "ENCRYPTION_KEYS": ("encryption_keys", _csv),
            "WHATSAPP_VERIFY_TOKEN": ("whatsapp_verify_token", str),
            "WHATSAPP_APP_SECRET": ("whatsapp_app_secret", str),
        }
        values: dict[str, object] = {}
        for env_name, (attr, parse) in parsers.items():
            raw = env.get(env_name)
            if raw is None or raw.strip() == "":  # an empty variable means "use the default"
                continue
            try:
                values[attr] = parse(raw)
            except ValueError as exc:
                raise SettingsError(f"{env_name}: {exc}") from exc
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.is_production and self.secret_key in ("", DEFAULT_SECRET_KEY):
            raise SettingsError(
                "SECRET_KEY is missing or still the development default; "
                "production refuses to start without a secret of its own "
                "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if self.is_production and len(self.secret_key) < 32:
            raise SettingsError("SECRET_KEY must be at least 32 characters in production")
        if self.is_production and not self.encryption_keys:
            raise SettingsError(
                "ENCRYPTION_KEYS is missing: production keeps WhatsApp credentials encrypted with keys of its own "
                "(generate one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            )
        if self.task_soft_time_limit_seconds >= self.task_time_limit_seconds:
            raise SettingsError("TASK_SOFT_TIME_LIMIT_SECONDS must be below TASK_TIME_LIMIT_SECONDS")
        if not self.api_v1_prefix.startswith("/"):
            raise SettingsError("API_V1_PREFIX must start with '/'")

    def with_overrides(self, **changes: object) -> "Settings":
        updated = replace(self, **changes)
        updated.validate()
        return updated


_current: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, parsed from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current


def use_settings(settings: Settings | None) -> None:
    """Install `settings` for this process (tests, app factories); None re-reads the environment."""
    global _current
    _current = settings
