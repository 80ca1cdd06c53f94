"""The sending limits Meta enforces: per-number throughput, per-user pair rate, per-portfolio messaging limit.

Each limit has a `check_*` that raises (or answers) without changing anything and a `count_*` that records
an accepted message, so a request refused for another reason never uses up quota.
"""

from __future__ import annotations

from sandbox.errors import GraphError
from sandbox.state import DAY, TIERS, Customer, Number, Portfolio


def check_throughput(number: Number, now: float) -> None:
    """At most `throughput_mps` messages (inbound and outbound) in any one-second span."""
    recent = number.recent_messages
    while recent and recent[0] <= now - 1.0:
        recent.popleft()
    if len(recent) >= number.throughput_mps:
        raise GraphError(130429)


def count_throughput(number: Number, now: float) -> None:
    number.recent_messages.append(now)


def check_pair_rate(number: Number, customer: Customer, now: float) -> None:
    """One message per interval (6 s) to one user; a burst may borrow future quota.

    Model: a burst starts when no quota is owed and lasts one interval; it may hold up to `pair_rate_burst`
    (45) messages, and each message adds one interval of debt. After the burst, nothing more goes to that
    user until the debt is repaid, so a burst of 20 means about 2 minutes of waiting, as Meta describes.
    """
    in_burst = now - customer.pair_burst_started < number.pair_rate_interval_seconds
    if in_burst:
        if customer.pair_burst_count >= number.pair_rate_burst:
            raise GraphError(131056)
    elif now < customer.pair_debt_until:
        raise GraphError(131056)


def count_pair_rate(number: Number, customer: Customer, now: float) -> None:
    interval = number.pair_rate_interval_seconds
    if now - customer.pair_burst_started >= interval:
        customer.pair_burst_started = now
        customer.pair_burst_count = 0
    customer.pair_burst_count += 1
    customer.pair_debt_until = max(customer.pair_debt_until, customer.pair_burst_started) + interval


def within_messaging_limit(portfolio: Portfolio, wa_id: str, now: float) -> bool:
    """May the portfolio reach this user outside a window? Users already reached in the last 24 h are free."""
    reached = portfolio.reached
    while reached and next(iter(reached.values())) <= now - DAY:
        reached.popitem(last=False)
    limit = TIERS[portfolio.tier]
    return wa_id in reached or limit is None or len(reached) < limit


def count_reach(portfolio: Portfolio, wa_id: str, now: float) -> None:
    portfolio.reached[wa_id] = now
    portfolio.reached.move_to_end(wa_id)
