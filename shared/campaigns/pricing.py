"""What a campaign will cost at Meta: per delivered template message, by category and recipient market.

Meta bills per delivered template message since 1 Jul 2025 (reference §5), at a rate set by the template's
category and the market of the recipient's country calling code (a country, or a "Rest of <region>" group).
The rates live in a dated JSON table (`price_table.json`, or the file `PRICE_TABLE_PATH` names), in
micros (millionths of a dollar: rates are fractions of a cent). Results are integer minor units (cents).

Markets come from the phone's calling code by longest prefix over at most four digits, so SQL can group
phones by `left(phone_e164, 5)` and hand the groups to `estimate_by_prefix()` instead of 100k phones.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from shared.settings import get_settings

CATEGORIES = ("marketing", "utility", "authentication")
# Billed as authentication here: the table does not model Meta's authentication-international rates.
CATEGORY_ALIASES = {"authentication_international": "authentication"}
FREE_CATEGORIES = ("service",)
OTHER = "other"
# A calling code (with NANP area codes) is at most 4 digits, so "+" and 4 digits name any market.
PREFIX_DIGITS = 4
SQL_PREFIX_LENGTH = PREFIX_DIGITS + 1
MICROS_PER_MINOR = 10_000  # USD cents; a currency without cents would need its own divisor


class PriceTableError(ValueError):
    """The price table file is missing, unreadable or inconsistent; the message says which and why."""


@dataclass(frozen=True)
class PriceTable:
    effective: str
    currency: str
    rates: Mapping[str, Mapping[str, int]]  # market -> category -> micros per delivered message
    names: Mapping[str, str]
    calling_codes: Mapping[str, str]  # calling-code digits -> market

    def market_of(self, phone: str) -> str:
        digits = phone[1:] if phone.startswith("+") else phone
        codes = self.calling_codes
        for length in range(min(PREFIX_DIGITS, len(digits)), 0, -1):
            market = codes.get(digits[:length])
            if market is not None:
                return market
        return OTHER


def load_price_table(path: str | Path) -> PriceTable:
    """Read and check a price table file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PriceTableError(f"price table {path}: {exc}") from exc
    return _parse(data, str(path))


def _parse(data: Any, where: str) -> PriceTable:
    if not isinstance(data, dict) or data.get("unit") != "micros":
        raise PriceTableError(f"price table {where}: expected an object with \"unit\": \"micros\"")
    markets = data.get("markets")
    if not isinstance(markets, dict) or OTHER not in markets:
        raise PriceTableError(f"price table {where}: markets must be an object that includes {OTHER!r}")
    rates: dict[str, dict[str, int]] = {}
    for market, row in markets.items():
        if not isinstance(row, dict) or not all(_micros(row.get(category)) for category in CATEGORIES):
            raise PriceTableError(
                f"price table {where}: market {market!r} needs whole micros for {', '.join(CATEGORIES)}"
            )
        rates[market] = {category: row[category] for category in CATEGORIES}
    codes = data.get("calling_codes") or {}
    unknown = sorted({market for market in codes.values() if market not in rates})
    bad_codes = sorted(code for code in codes if not (code.isdigit() and len(code) <= PREFIX_DIGITS))
    if unknown or bad_codes:
        raise PriceTableError(
            f"price table {where}: calling codes name unknown markets {unknown} or are not 1-4 digits {bad_codes}"
        )
    return PriceTable(
        effective=str(data.get("effective")),
        currency=str(data.get("currency", "USD")),
        rates=rates,
        names={market: str((data.get("names") or {}).get(market, market)) for market in markets},
        calling_codes=dict(codes),
    )


def _micros(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


@lru_cache(maxsize=4)
def _cached(path: str) -> PriceTable:
    return load_price_table(path)


def price_table() -> PriceTable:
    """The table `PRICE_TABLE_PATH` names (the bundled one by default), read once per process."""
    return _cached(str(get_settings().price_table_path))


def market_of(phone_e164: str, *, table: PriceTable | None = None) -> str:
    """The pricing market of a phone ("+5511…" -> "BR", "+1…" -> "north_america"); unknown -> "other".

    Also takes a prefix of at least "+" and four digits (see `SQL_PREFIX_LENGTH`).
    """
    return (table or price_table()).market_of(phone_e164)


def estimate(counts: Mapping[tuple[str, str], int], *, table: PriceTable | None = None) -> dict[str, Any]:
    """Cost of `counts` ({(market, category): delivered messages}) at list price.

    Categories are Meta's (any case); `service` is free, `authentication_international` is priced as
    authentication. A market the table does not know prices as "other". Raises ValueError for an
    unknown category. Each amount is rounded half up to minor units on its own, so the parts may
    differ from the total by a cent or so.
    """
    table = table or price_table()
    total = 0
    by_category: Counter[str] = Counter()
    by_market: Counter[str] = Counter()
    messages = 0
    for (market, category), count in counts.items():
        category = _category(category)
        if count <= 0:
            continue
        messages += count
        if category in FREE_CATEGORIES:
            continue
        market = market if market in table.rates else OTHER
        micros = table.rates[market][category] * count
        total += micros
        by_category[category] += micros
        by_market[market] += micros
    return {
        "currency": table.currency,
        "total_minor": _minor(total),
        "total_micros": total,
        "messages": messages,
        "table_effective": table.effective,
        "by_category": {category: _minor(micros) for category, micros in sorted(by_category.items())},
        "by_market": {market: _minor(micros) for market, micros in sorted(by_market.items())},
    }


def estimate_by_prefix(rows: Iterable[tuple[str, str, int]], *, table: PriceTable | None = None) -> dict[str, Any]:
    """`estimate()` from SQL groups: rows of (phone prefix such as "+5511", category, count).

    E.g. `SELECT left(phone_e164, 5), <category>, count(*) ... GROUP BY 1, 2` (see `SQL_PREFIX_LENGTH`).
    """
    table = table or price_table()
    counts: Counter[tuple[str, str]] = Counter()
    for prefix, category, count in rows:
        counts[(table.market_of(prefix or ""), category)] += int(count)
    return estimate(counts, table=table)


def _category(category: str) -> str:
    name = str(category).lower()
    name = CATEGORY_ALIASES.get(name, name)
    if name not in CATEGORIES and name not in FREE_CATEGORIES:
        raise ValueError(f"unknown pricing category {category!r}; expected one of {', '.join(CATEGORIES)}")
    return name


def _minor(micros: int) -> int:
    return (micros + MICROS_PER_MINOR // 2) // MICROS_PER_MINOR
