"""Meta's account restrictions (`account_update` webhooks): what a restriction holds, and why, in plain words.

- RESTRICTED_BIZ_INITIATED_MESSAGING: the number may still answer its customers but not start conversations,
  so template messages wait; replies in an open window go on.
- RESTRICTED_CUSTOMER_INITIATED_MESSAGING, a restriction type this code does not know, or a disabled account
  (DISABLED_UPDATE, `waba_ban_state` DISABLE): every send waits.
- RESTRICTED_ADD_PHONE_NUMBER_ACTION holds no send.

A hold ends at Meta's expiration (the message sweep re-arms the number's dispatcher then) or when Meta
reinstates the account. Held messages stay `queued`: nothing is attempted, so nothing fails and nothing
draws an error from Meta; the number's API answer says what waits and until when.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from shared.models import NumberStatus, WhatsAppNumber

TEMPLATES_ONLY = frozenset({"RESTRICTED_BIZ_INITIATED_MESSAGING"})
HOLDS_NO_SEND = frozenset({"RESTRICTED_ADD_PHONE_NUMBER_ACTION"})
# A restriction Meta sent without an expiration is held this long; a later account_update replaces it.
DEFAULT_HOLD = dt.timedelta(hours=24)
# A disabled account has no end date: it waits for Meta's REINSTATE.
UNTIL_REINSTATED = dt.datetime(9999, 12, 31, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Holds:
    sends_until: dt.datetime | None
    templates_until: dt.datetime | None


def _expiration(value: Any, now: dt.datetime) -> dt.datetime:
    """Meta's `expiration`: Unix seconds (as documented) or an ISO 8601 time; anything else holds DEFAULT_HOLD."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    if isinstance(value, str):
        if value.isdigit():
            return dt.datetime.fromtimestamp(int(value), tz=dt.timezone.utc)
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return now + DEFAULT_HOLD
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    return now + DEFAULT_HOLD


def _later(a: dt.datetime | None, b: dt.datetime) -> dt.datetime:
    return b if a is None or b > a else a


def holds_of(restriction_info: Any, *, now: dt.datetime) -> Holds:
    """What Meta's `restriction_info` list holds. A malformed entry holds every send: the safe reading."""
    sends_until = templates_until = None
    entries = restriction_info if isinstance(restriction_info, list) else [restriction_info]
    for entry in entries:
        kind = entry.get("restriction_type") if isinstance(entry, dict) else None
        if kind in HOLDS_NO_SEND:
            continue
        until = _expiration(entry.get("expiration") if isinstance(entry, dict) else None, now)
        if kind in TEMPLATES_ONLY:
            templates_until = _later(templates_until, until)
        else:
            sends_until = _later(sends_until, until)
    return Holds(sends_until=sends_until, templates_until=templates_until)


def restrict(number: WhatsAppNumber, restriction_info: Any, *, now: dt.datetime) -> None:
    """An ACCOUNT_RESTRICTION: Meta's list kept as sent, and the holds it sets (replacing earlier ones)."""
    holds = holds_of(restriction_info, now=now)
    number.restriction_info = restriction_info if isinstance(restriction_info, list) else [restriction_info]
    number.sends_held_until, number.templates_held_until = holds.sends_until, holds.templates_until
    number.status = NumberStatus.restricted


def disable(number: WhatsAppNumber) -> None:
    number.sends_held_until = UNTIL_REINSTATED
    number.status = NumberStatus.restricted


def reinstate(number: WhatsAppNumber) -> None:
    number.sends_held_until = number.templates_held_until = None
    number.restriction_info = None
    number.status = NumberStatus.connected


def held_reason(number: WhatsAppNumber, *, now: dt.datetime) -> str | None:
    """Why this number's messages wait, in plain words; None: nothing is held."""
    if number.sends_held_until is not None and number.sends_held_until > now:
        if number.sends_held_until == UNTIL_REINSTATED:
            return "Meta disabled this account: every message waits until Meta reinstates it"
        return (f"Meta restricted this number: every message waits until "
                f"{number.sends_held_until.isoformat()}")
    if number.templates_held_until is not None and number.templates_held_until > now:
        return ("Meta restricted business-initiated messaging on this number: template messages wait until "
                f"{number.templates_held_until.isoformat()}; replies in an open window still go")
    return None
