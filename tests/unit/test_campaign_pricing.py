"""Campaign cost estimates: markets from calling codes, the dated price table, money in minor units (pure)."""

from __future__ import annotations

import json
import time

import pytest

from shared.campaigns import pricing
from shared.campaigns.pricing import (
    PriceTableError,
    estimate,
    estimate_by_prefix,
    load_price_table,
    market_of,
    price_table,
)
from shared.settings import PROJECT_ROOT, Settings, get_settings, use_settings

BUNDLED = PROJECT_ROOT / "shared" / "campaigns" / "price_table.json"
SMALL = {
    "effective": "2030-01-01",
    "currency": "USD",
    "unit": "micros",
    "markets": {
        "BR": {"marketing": 62500, "utility": 6800, "authentication": 6800},
        "north_america": {"marketing": 25000, "utility": 3400, "authentication": 3400},
        "other": {"marketing": 60400, "utility": 7700, "authentication": 7700},
    },
    "calling_codes": {"1": "north_america", "1876": "other", "55": "BR"},
}


@pytest.fixture
def small_table(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(SMALL))
    return load_price_table(path)


@pytest.mark.parametrize("phone,market", [
    ("+14155550123", "north_america"),
    ("+16475550123", "north_america"),
    ("+18765550123", "rest_of_latin_america"),  # Jamaica shares +1 but not North America's rates
    ("+17875550123", "rest_of_latin_america"),  # Puerto Rico
    ("+5511987654321", "BR"),
    ("+919876543210", "IN"),
    ("+5215512345678", "MX"),
    ("+447700900123", "GB"),
    ("+79161234567", "RU"),
    ("+77011234567", "other"),  # Kazakhstan, inside +7
    ("+972501234567", "IL"),
    ("+97150123456", "AE"),
    ("+2348012345678", "NG"),
    ("+254712345678", "rest_of_africa"),
    ("+61412345678", "rest_of_asia_pacific"),
    ("+48501234567", "rest_of_central_eastern_europe"),
    ("+351912345678", "rest_of_western_europe"),
    ("+97455123456", "rest_of_middle_east"),
    ("+8210123456", "other"),
    ("+999", "other"),
    ("", "other"),
])
def test_markets_come_from_the_calling_code(phone, market):
    assert market_of(phone) == market


def test_a_sql_prefix_of_plus_and_four_digits_names_the_market():
    assert pricing.SQL_PREFIX_LENGTH == 5
    assert market_of("+1876") == "rest_of_latin_america" and market_of("+1415") == "north_america"
    assert market_of("+5511") == "BR"


def test_the_bundled_table_is_dated_consistent_and_says_where_it_came_from():
    raw = json.loads(BUNDLED.read_text())
    assert raw["effective"] == "2025-07-01" and raw["currency"] == "USD" and raw["unit"] == "micros"
    source = " ".join(raw["source"])
    assert "developers.facebook.com" in source and "checked against Meta's current rate card" in source
    table = load_price_table(BUNDLED)
    assert table.rates["BR"]["marketing"] == 62500  # US$ 0.0625
    assert all(rates["marketing"] > rates["utility"] for rates in table.rates.values())
    assert {"BR", "IN", "MX", "north_america", "other"} <= set(table.rates)
    assert table.names["north_america"] == "North America (US, Canada)" and table.names["BR"] == "Brazil"


def test_estimate_in_minor_units_rounded_half_up(small_table):
    result = estimate({("BR", "MARKETING"): 1000, ("north_america", "utility"): 3, ("BR", "service"): 50},
                      table=small_table)
    # 1000 x 62,500 + 3 x 3,400 micros = 62,510,200 micros = 6,251.02 cents
    assert result == {
        "currency": "USD",
        "total_minor": 6251,
        "total_micros": 62_510_200,
        "messages": 1053,
        "table_effective": "2030-01-01",
        "by_category": {"marketing": 6250, "utility": 1},
        "by_market": {"BR": 6250, "north_america": 1},
    }
    assert estimate({("north_america", "marketing"): 2}, table=small_table)["total_minor"] == 5  # 5.0 cents
    assert estimate({("BR", "utility"): 75}, table=small_table)["total_minor"] == 51  # 51.0
    assert estimate({("north_america", "utility"): 15}, table=small_table)["total_minor"] == 5  # 5.1 -> 5
    assert estimate({("north_america", "utility"): 25}, table=small_table)["total_minor"] == 9  # 8.5 -> 9


def test_unknown_markets_price_as_other_and_unknown_categories_are_refused(small_table):
    assert estimate({("ZZ", "marketing"): 100}, table=small_table)["by_market"] == {"other": 604}
    assert estimate({("BR", "authentication_international"): 100}, table=small_table)["total_minor"] == 68
    assert estimate({}, table=small_table)["total_minor"] == 0
    with pytest.raises(ValueError, match="unknown pricing category"):
        estimate({("BR", "promotional"): 1}, table=small_table)


def test_estimate_by_prefix_groups_sql_rows_into_markets(small_table):
    rows = [("+5511", "marketing", 600), ("+5521", "marketing", 400), ("+1876", "marketing", 10),
            ("+1415", "marketing", 4), (None, "marketing", 1)]
    result = estimate_by_prefix(rows, table=small_table)
    assert result["by_market"] == {"BR": 6250, "north_america": 10, "other": 66}
    assert result["messages"] == 1015


def test_the_table_path_is_a_setting(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(SMALL))
    assert Settings.from_env({}).price_table_path == BUNDLED
    previous = get_settings()
    use_settings(Settings.from_env({"PRICE_TABLE_PATH": str(path)}))
    try:
        assert price_table().effective == "2030-01-01"
        assert estimate({("BR", "marketing"): 1})["table_effective"] == "2030-01-01"
    finally:
        use_settings(previous)


@pytest.mark.parametrize("change,fragment", [
    ({"unit": "cents"}, "micros"),
    ({"markets": {"BR": SMALL["markets"]["BR"]}}, "'other'"),
    ({"markets": {**SMALL["markets"], "BR": {"marketing": 0.0625, "utility": 1, "authentication": 1}}}, "'BR'"),
    ({"calling_codes": {"55": "Brazil"}}, "unknown markets"),
    ({"calling_codes": {"+55": "BR"}}, "1-4 digits"),
])
def test_a_broken_table_says_what_is_wrong(tmp_path, change, fragment):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({**SMALL, **change}))
    with pytest.raises(PriceTableError, match=fragment):
        load_price_table(path)
    with pytest.raises(PriceTableError, match="missing.json"):
        load_price_table(tmp_path / "missing.json")


def test_markets_for_100k_phones_cost_microseconds():
    table = load_price_table(BUNDLED)
    phones = [f"+{prefix}{index:09d}" for index in range(20_000) for prefix in ("55", "1", "91", "44", "234")]
    started = time.perf_counter()
    for phone in phones:
        table.market_of(phone)
    per_phone = (time.perf_counter() - started) / len(phones)
    assert per_phone < 10e-6, f"{per_phone * 1e6:.2f} µs per phone"
