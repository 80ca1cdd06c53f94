"""Send policy: what a failed Graph call means for the message, its recipient and its number.

The one place that maps a Graph error (shared/whatsapp/errors.py classifies it) to what happens
next; the sends pool calls it for every failed request, and the campaigns and bots pools go
through the same send steps, so Meta's push-back is answered the same way wherever a message
came from. Pure: it decides, the caller acts (shared/services/send_outcomes.py records the decision).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from shared.backoff import backoff_seconds, jittered
from shared.whatsapp.errors import ErrorAction, ErrorScope, GraphAPIError, GraphError, GraphTransportError

MAX_ATTEMPTS = 6
PAIR_HOLD_BASE = 6.0
NUMBER_HOLD_DEFAULT = 1.0


class Verdict(enum.StrEnum):
    RETRY = "retry"  # back to queued, later (the request did not take effect)
    HOLD_NUMBER = "hold_number"  # Meta throttled the number: nothing leaves on it for `hold_seconds`, then retry
    HOLD_RECIPIENT = "hold_recipient"  # pair rate (131056): this recipient waits, the others go on
    FAIL = "fail"  # permanent: the message fails with Meta's code
    PAUSE_NUMBER = "pause_number"  # token or account refused: the number's sends wait until someone fixes it
    UNKNOWN = "unknown"  # the request may have reached Meta: never resent, a status webhook settles it


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    code: str
    reason: str
    delay_seconds: float = 0.0  # RETRY / HOLD_*: when the message is due again
    hold_seconds: float = 0.0  # HOLD_*: how long the number or recipient is held

    @property
    def stops_number(self) -> bool:
        """The rest of the batch must not go out now (it is put back, untouched)."""
        return self.verdict in (Verdict.HOLD_NUMBER, Verdict.PAUSE_NUMBER)


def decide(exc: GraphError, *, attempt: int) -> Decision:
    """What to do after attempt number `attempt` (1-based, the one that just failed) raised `exc`."""
    if isinstance(exc, GraphTransportError):
        if exc.ambiguous:
            return Decision(Verdict.UNKNOWN, "unknown_outcome", str(exc))
        return _retry_or_fail("transport_error", str(exc), attempt, backoff_seconds(attempt - 1))
    if not isinstance(exc, GraphAPIError):
        return Decision(Verdict.FAIL, "graph_error", str(exc))
    classification = exc.classification
    code, reason = str(exc.code), exc.message
    if classification.action is ErrorAction.RETRY_AFTER and classification.scope is ErrorScope.NUMBER:
        hold = exc.retry_after or classification.retry_after or NUMBER_HOLD_DEFAULT
        return Decision(Verdict.HOLD_NUMBER, code, reason, delay_seconds=jittered(hold), hold_seconds=hold)
    if classification.action is ErrorAction.PAIR_LIMITED:
        hold = classification.delay_for(attempt) or PAIR_HOLD_BASE
        return Decision(Verdict.HOLD_RECIPIENT, code, reason, delay_seconds=hold, hold_seconds=hold)
    if classification.action in (ErrorAction.INVALID_TOKEN, ErrorAction.PAUSE_SENDER):
        return Decision(Verdict.PAUSE_NUMBER, code, f"Meta {code}: {reason}")
    if classification.retryable:
        cap = classification.max_attempts or MAX_ATTEMPTS
        if attempt < cap:
            return Decision(Verdict.RETRY, code, reason, delay_seconds=jittered(classification.delay_for(attempt) or 2.0))
    return Decision(Verdict.FAIL, code, reason)


def upload_failed(exc: GraphError, *, attempt: int) -> Decision:
    """An upload that may have happened sends nothing: a transport error there is always safe to retry."""
    if isinstance(exc, GraphTransportError):
        return _retry_or_fail("upload_failed", str(exc), attempt, backoff_seconds(attempt - 1))
    return decide(exc, attempt=attempt)


def _retry_or_fail(code: str, reason: str, attempt: int, delay: float) -> Decision:
    if attempt < MAX_ATTEMPTS:
        return Decision(Verdict.RETRY, code, reason, delay_seconds=delay)
    return Decision(Verdict.FAIL, code, reason)
