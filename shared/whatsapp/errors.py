"""Graph API errors and what to do about each code (whatsapp-cloud-api reference §3).

Branch on the Meta `code` (and the few subcodes the reference distinguishes), never on the HTTP
status or the message text; the HTTP status only decides for codes the table does not know.
The client raises `GraphAPIError` for every error answer and a `GraphTransportError` subclass
when no answer could be read; webhook error items are classified with the same `classify()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Mapping


class ErrorAction(StrEnum):
    """What the caller does next. Only the first three are ever retried."""

    RETRY_BACKOFF = "retry_backoff"  # transient: exponential backoff with jitter
    RETRY_AFTER = "retry_after"  # throttled: wait `retry_after` seconds, then retry
    PAIR_LIMITED = "pair_limited"  # 131056: retry this recipient only, later; keep sending to others
    NEEDS_TEMPLATE = "needs_template"  # outside the 24 h window: send a template or wait for the user
    PERMANENT = "permanent"  # fail this message with the code and reason; never retry it
    PAUSE_SENDER = "pause_sender"  # trip the number's / WABA's circuit breaker and alert
    INVALID_TOKEN = "invalid_token"  # refresh the token; stop the tenant's sends until fixed


RETRYABLE_ACTIONS = frozenset({ErrorAction.RETRY_BACKOFF, ErrorAction.RETRY_AFTER, ErrorAction.PAIR_LIMITED})


class ErrorScope(StrEnum):
    """What the error is about, so the caller knows how far to stop."""

    MESSAGE = "message"  # this request only (bad parameter, bad media)
    RECIPIENT = "recipient"  # this user (unreachable, opted out, window closed)
    TEMPLATE = "template"  # this template (missing, paused, disabled)
    NUMBER = "number"  # the sending phone number
    WABA = "waba"  # the whole WhatsApp Business Account
    APP = "app"  # our app across tenants (app-level rate limit)
    TENANT = "tenant"  # the tenant's token or permissions


BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
PAIR_LIMIT_MIN_SECONDS = 6.0


@dataclass(frozen=True)
class Classification:
    action: ErrorAction
    scope: ErrorScope
    reason: str
    retry_after: float | None = None  # seconds, for RETRY_AFTER and PAIR_LIMITED
    max_attempts: int | None = None  # a cap the reference gives (131000); None: the caller's own cap
    alert: bool = False  # a human must look (circuit breaker, permissions, unknown code)
    known: bool = True  # False: the code is not in the reference's table

    @property
    def retryable(self) -> bool:
        return self.action in RETRYABLE_ACTIONS

    def delay_for(self, attempt: int) -> float | None:
        """Base delay in seconds before retry number `attempt` (1-based), jitter not included; None: do not retry."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        if self.action is ErrorAction.RETRY_BACKOFF:
            return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
        if self.action is ErrorAction.RETRY_AFTER:
            return self.retry_after
        if self.action is ErrorAction.PAIR_LIMITED:
            # Meta: wait at least 6 s, then 4^n seconds.
            return max(self.retry_after or PAIR_LIMIT_MIN_SECONDS, 4.0**attempt)
        return None


def _rule(action: ErrorAction, scope: ErrorScope, reason: str, **extra: Any) -> Classification:
    if action is ErrorAction.PAUSE_SENDER or action is ErrorAction.INVALID_TOKEN:
        extra.setdefault("alert", True)
    return Classification(action, scope, reason, **extra)


A, S = ErrorAction, ErrorScope  # short names keep the table one code per line

_MISSING_PERMISSION = _rule(A.PERMANENT, S.TENANT, "missing capability or permission", alert=True)
_WABA_RATE_LIMIT = _rule(A.RETRY_AFTER, S.WABA, "WABA management-call rate limit: wait an hour", retry_after=3600.0)

CLASSIFICATIONS: dict[int, Classification] = {
    0: _rule(A.INVALID_TOKEN, S.TENANT, "access token invalid, expired or revoked"),
    3: _MISSING_PERMISSION,
    4: _rule(A.RETRY_AFTER, S.APP, "app-level Graph call rate limit: throttle app-wide", retry_after=300.0),
    10: _MISSING_PERMISSION,
    **{code: _MISSING_PERMISSION for code in range(200, 300)},
    100: _rule(A.PERMANENT, S.MESSAGE, "invalid, unsupported or misspelled parameter (or a value too long)"),
    190: _rule(A.INVALID_TOKEN, S.TENANT, "access token expired"),
    368: _rule(A.PAUSE_SENDER, S.WABA, "WABA restricted or disabled for a policy violation"),
    # Legacy On-Premises code; the reference says to treat it as 131047.
    470: _rule(A.NEEDS_TEMPLATE, S.RECIPIENT, "outside the 24 h customer-service window (legacy code)"),
    80007: _WABA_RATE_LIMIT,
    80008: _WABA_RATE_LIMIT,
    130429: _rule(A.RETRY_AFTER, S.NUMBER, "per-number throughput exceeded: lower the send rate", retry_after=1.0),
    130472: _rule(A.PERMANENT, S.RECIPIENT, "user is part of a Meta experiment"),
    130497: _rule(A.PERMANENT, S.RECIPIENT, "business account barred from messaging users in this country"),
    131000: _rule(A.RETRY_BACKOFF, S.MESSAGE, "unknown error at Meta", max_attempts=5),
    131005: _rule(A.PERMANENT, S.TENANT, "access denied or permission removed", alert=True),
    131008: _rule(A.PERMANENT, S.MESSAGE, "required parameter missing"),
    131009: _rule(A.PERMANENT, S.MESSAGE, "parameter value invalid"),
    131016: _rule(A.RETRY_BACKOFF, S.MESSAGE, "service temporarily unavailable"),
    131021: _rule(A.PERMANENT, S.RECIPIENT, "recipient is the sending number"),
    131026: _rule(A.PERMANENT, S.RECIPIENT, "undeliverable: mark the contact unreachable"),
    131031: _rule(A.PAUSE_SENDER, S.WABA, "account locked (policy, or wrong two-step PIN)"),
    131042: _rule(A.PAUSE_SENDER, S.WABA, "billing problem on the WABA"),
    131045: _rule(A.PAUSE_SENDER, S.NUMBER, "number registration error: re-register the number"),
    131047: _rule(A.NEEDS_TEMPLATE, S.RECIPIENT, "more than 24 h since the user last wrote: send a template"),
    131048: _rule(A.PAUSE_SENDER, S.NUMBER, "spam rate limit: number restricted, check its quality"),
    131049: _rule(A.PERMANENT, S.RECIPIENT, "held back for ecosystem engagement: no marketing to this user for 24 h"),
    131050: _rule(A.PERMANENT, S.RECIPIENT, "user stopped marketing messages: record the opt-out"),
    131051: _rule(A.PERMANENT, S.MESSAGE, "unsupported message type"),
    131052: _rule(A.PERMANENT, S.MESSAGE, "could not download the user's media: ask the user to resend"),
    131053: _rule(A.PERMANENT, S.MESSAGE, "could not upload or fetch the media (type, size or URL): fix the file"),
    131056: _rule(A.PAIR_LIMITED, S.RECIPIENT, "pair rate limit: too many messages to this user", retry_after=6.0),
    131057: _rule(A.RETRY_AFTER, S.NUMBER, "account in maintenance", retry_after=60.0),
    131064: _rule(A.PAUSE_SENDER, S.WABA, "messaging limit reduced for template mis-classification"),
    132000: _rule(A.PERMANENT, S.MESSAGE, "template parameter count mismatch"),
    132001: _rule(A.PERMANENT, S.TEMPLATE, "template name or language missing or not approved: resync templates"),
    132005: _rule(A.PERMANENT, S.MESSAGE, "translated template text too long"),
    132007: _rule(A.PERMANENT, S.TEMPLATE, "template content violates policy"),
    132012: _rule(A.PERMANENT, S.MESSAGE, "template parameter format mismatch"),
    132015: _rule(A.PERMANENT, S.TEMPLATE, "template paused for low quality: stop the campaign"),
    132016: _rule(A.PERMANENT, S.TEMPLATE, "template permanently disabled: a new template is needed"),
    133010: _rule(A.PAUSE_SENDER, S.NUMBER, "number not registered on the Cloud API: register it"),
    133016: _rule(A.RETRY_AFTER, S.NUMBER, "too many register/deregister attempts", retry_after=86400.0),
    135000: _rule(A.PERMANENT, S.MESSAGE, "generic user error in request parameters"),
    # Template creation (reference §7): parameter placement and density.
    2388293: _rule(A.PERMANENT, S.TEMPLATE, "template parameters too dense for the text length"),
    2388299: _rule(A.PERMANENT, S.TEMPLATE, "template parameters at the start or end of the body"),
}

SUBCODE_CLASSIFICATIONS: dict[tuple[int, int], Classification] = {
    (190, 460): _rule(A.INVALID_TOKEN, S.TENANT, "access token invalidated by a password change"),
    (190, 463): _rule(A.INVALID_TOKEN, S.TENANT, "access token expired"),
    # Template creation errors arrive as code 100 with these subcodes.
    (100, 2388293): CLASSIFICATIONS[2388293],
    (100, 2388299): CLASSIFICATIONS[2388299],
}

del A, S


def classify(
    code: int | None,
    subcode: int | None = None,
    http_status: int | None = None,
    *,
    is_transient: bool | None = None,
) -> Classification:
    """The reference's advice for `code`; for codes it does not list, decide from the HTTP status."""
    if code is not None:
        if subcode is not None and (code, subcode) in SUBCODE_CLASSIFICATIONS:
            return SUBCODE_CLASSIFICATIONS[(code, subcode)]
        if code in CLASSIFICATIONS:
            return CLASSIFICATIONS[code]
    label = f"unknown error code {code}" if code is not None else "error without a Graph error code"
    if http_status is not None:
        label += f" (HTTP {http_status})"
    unknown = {"scope": ErrorScope.MESSAGE, "alert": True, "known": False}  # alert: the table needs a new row
    if http_status == 429:
        return Classification(ErrorAction.RETRY_AFTER, reason=f"{label}: throttled", retry_after=60.0, **unknown)
    if is_transient or (http_status is not None and http_status >= 500):
        reason = f"{label}: treated as transient"
        return Classification(ErrorAction.RETRY_BACKOFF, reason=reason, max_attempts=5, **unknown)
    # A 4xx, or an asynchronous error with no status: the same request would fail the same way again.
    return Classification(ErrorAction.PERMANENT, reason=f"{label}: treated as permanent", **unknown)


class GraphError(Exception):
    """Any failure of a Graph API call."""


class GraphAPIError(GraphError):
    """Meta answered with an error body (or a non-2xx status without one)."""

    def __init__(
        self,
        *,
        http_status: int | None,
        code: int | None,
        subcode: int | None = None,
        message: str = "",
        details: str | None = None,
        error_data: Any = None,
        error_type: str | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.http_status = http_status
        self.code = code
        self.subcode = subcode
        self.message = message
        self.details = details
        self.error_data = error_data
        self.error_type = error_type
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        self.classification = classify(code, subcode, http_status, is_transient=is_transient)
        # A Retry-After header, when Meta sends one, beats the table's default.
        self.retry_after = retry_after if retry_after is not None else self.classification.retry_after
        super().__init__(self._describe())

    @property
    def action(self) -> ErrorAction:
        return self.classification.action

    @property
    def retryable(self) -> bool:
        return self.classification.retryable

    def _describe(self) -> str:
        code = "no code" if self.code is None else f"code {self.code}"
        if self.subcode is not None:
            code += f"/{self.subcode}"
        text = f"Graph API error ({code}, HTTP {self.http_status}): {self.message or self.classification.reason}"
        if self.details:
            text += f" - {self.details}"
        if self.fbtrace_id:
            text += f" [fbtrace_id={self.fbtrace_id}]"
        return text

    @classmethod
    def from_body(cls, http_status: int | None, body: Any, *, retry_after: float | None = None) -> "GraphAPIError":
        """Build from a decoded response body: `{"error": {...}}`, or anything else for a bare status."""
        error = body.get("error") if isinstance(body, Mapping) else None
        if not isinstance(error, Mapping):
            return cls(http_status=http_status, code=None, retry_after=retry_after)
        error_data = error.get("error_data")
        if isinstance(error_data, Mapping):
            details = error_data.get("details")
        else:  # management endpoints may send a plain string
            details = error_data
        return cls(
            http_status=http_status,
            code=_int_or_none(error.get("code")),
            subcode=_int_or_none(error.get("error_subcode")),
            message=str(error.get("message") or ""),
            details=None if details is None else str(details),
            error_data=error_data,
            error_type=error.get("type"),
            fbtrace_id=error.get("fbtrace_id"),
            is_transient=error.get("is_transient") if isinstance(error.get("is_transient"), bool) else None,
            retry_after=retry_after,
        )


class MediaUrlExpiredError(GraphAPIError):
    """A media download URL answered 404: fetch a fresh URL with `get_media_url` (they live 5 minutes)."""


class GraphTransportError(GraphError):
    """No readable answer. `request_sent` says whether Meta may have received (and acted on) the call."""

    def __init__(self, message: str, *, method: str, path: str, request_sent: bool) -> None:
        super().__init__(message)
        self.method = method.upper()
        self.path = path
        self.request_sent = request_sent

    @property
    def ambiguous(self) -> bool:
        """True when a non-GET call may have taken effect: a send must be marked `unknown`, never resent blindly."""
        return self.request_sent and self.method not in ("GET", "HEAD")

    @property
    def safe_to_retry(self) -> bool:
        return not self.ambiguous


class GraphTimeoutError(GraphTransportError):
    """`phase` is "connect" (the request never left: safe to retry) or "read" (it left: ambiguous for sends)."""

    def __init__(self, message: str, *, method: str, path: str, phase: str) -> None:
        if phase not in ("connect", "read"):
            raise ValueError(f"unknown timeout phase {phase!r}")
        super().__init__(message, method=method, path=path, request_sent=phase == "read")
        self.phase = phase


class GraphConnectionError(GraphTransportError):
    """The connection failed; `request_sent` is False only when it was never established."""


class GraphMalformedResponseError(GraphTransportError):
    """A 2xx answer we could not read (no JSON, no message id): the call may well have succeeded."""

    def __init__(self, message: str, *, method: str, path: str, http_status: int) -> None:
        super().__init__(message, method=method, path=path, request_sent=True)
        self.http_status = http_status


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None

