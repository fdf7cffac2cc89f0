"""Money arithmetic, calendar windows and thresholds."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from runtime.budget.cost import PICO_PER_USD, Usage, cost_pico, estimate_pico, usage_from, usd
from runtime.budget.gate import percent
from runtime.budget.windows import window_for
from runtime.table import Price

PRICE = Price(input=2_500_000, cached_input=1_250_000, output=10_000_000, reasoning=10_000_000)


def test_a_million_small_charges_add_up_exactly() -> None:
    one = cost_pico(Usage(input_tokens=3, output_tokens=1), replace(PRICE, input=150_000, output=600_000))
    total = sum(one for _ in range(1_000_000))
    assert total == one * 1_000_000
    assert Decimal(total) / PICO_PER_USD == Decimal("1.05")
    floats = sum(0.00000105 for _ in range(1_000_000))
    assert floats != 1.05


def test_cached_and_reasoning_tokens_are_priced_apart() -> None:
    usage = Usage(input_tokens=1000, cached_input_tokens=400, output_tokens=200, reasoning_tokens=50)
    price = replace(PRICE, reasoning=20_000_000)
    expected = 600 * 2_500_000 + 400 * 1_250_000 + 150 * 10_000_000 + 50 * 20_000_000
    assert cost_pico(usage, price) == expected
    assert usd(expected) == "$0.0045"


@pytest.mark.parametrize(
    ("pico", "shown"),
    [
        (0, "$0.00"),
        (10**9, "$0.001"),
        (15 * 10**8, "$0.0015"),
        (125 * 10**11, "$12.50"),
        (100_040_000_000_000, "$100.04"),
        (20_000 * 10**12, "$20,000.00"),
        (100_044_999_999_499, "$100.045"),
        (1_499_999, "$0.000001"),
        (1_500_000, "$0.000002"),
        (25_000, "$0.000000025"),
    ],
)
def test_amounts_show_the_precision_they_need(pico: int, shown: str) -> None:
    assert usd(pico) == shown


@pytest.mark.parametrize(
    ("payload", "usage"),
    [
        ({"usage": {"prompt_tokens": 10, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4},
                    "completion_tokens_details": {"reasoning_tokens": 2}}}, Usage(10, 4, 5, 2)),
        ({"type": "response.completed", "response": {"usage": {"input_tokens": 7, "output_tokens": 3,
          "input_tokens_details": {"cached_tokens": 1}, "output_tokens_details": {"reasoning_tokens": 0}}}}, Usage(7, 1, 3, 0)),
        ({"usage": None}, None),
        ({"choices": []}, None),
        ({"usage": {"prompt_tokens": "many"}}, Usage(0, 0, 0, 0)),
    ],
)
def test_usage_is_read_from_every_openai_shape(payload: dict[str, object], usage: Usage | None) -> None:
    assert usage_from(payload) == usage


def test_estimate_takes_the_dearest_target_and_the_output_cap() -> None:
    cheap = replace(PRICE, input=1, output=1, reasoning=1)
    assert estimate_pico(400, {"max_tokens": 100}, [cheap, PRICE]) == 200 * 2_500_000 + 100 * 10_000_000
    assert estimate_pico(400, {}, [PRICE]) == 200 * 2_500_000 + 4096 * 10_000_000


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_day_window_follows_the_budgets_timezone_not_utc() -> None:
    # 23:30 UTC on the 24th is already the 25th in Amsterdam.
    now = at("2026-11-24T23:30:00+00:00")
    assert window_for("day", "UTC", now).label == "2026-11-24"
    amsterdam = window_for("day", "Europe/Amsterdam", now)
    assert amsterdam.label == "2026-11-25"
    assert amsterdam.start == at("2026-11-24T23:00:00+00:00") and amsterdam.end == at("2026-11-25T23:00:00+00:00")
    assert window_for("day", "America/Los_Angeles", at("2026-11-25T03:00:00+00:00")).label == "2026-11-24"


def test_month_window_ends_at_the_last_instant_of_the_month() -> None:
    assert window_for("month", "UTC", at("2026-12-31T23:59:59.999999+00:00")).label == "2026-12"
    assert window_for("month", "UTC", at("2027-01-01T00:00:00+00:00")).label == "2027-01"
    end = window_for("month", "Europe/Amsterdam", at("2026-03-15T12:00:00+00:00")).end
    assert end == at("2026-03-31T22:00:00+00:00")  # CEST begins on 29 March


def test_leap_day_belongs_to_february() -> None:
    w = window_for("month", "UTC", at("2028-02-29T12:00:00+00:00"))
    assert w.label == "2028-02" and w.end == at("2028-03-01T00:00:00+00:00")
    assert window_for("day", "UTC", at("2028-02-29T23:59:59+00:00")).label == "2028-02-29"


def test_week_windows_are_iso_weeks_starting_monday() -> None:
    w = window_for("week", "UTC", at("2026-11-29T23:00:00+00:00"))  # a Sunday
    assert w.label == "2026-W48" and w.start == at("2026-11-23T00:00:00+00:00")
    assert window_for("week", "UTC", at("2027-01-01T00:00:00+00:00")).label == "2026-W53"


def test_total_window_never_resets() -> None:
    assert window_for("total", "UTC", at("2026-01-01T00:00:00+00:00")).label == "total"


def test_threshold_percentages_floor_and_compare_with_ge() -> None:
    limit = 100 * PICO_PER_USD
    assert percent(80 * PICO_PER_USD, limit) == 80
    assert percent(80 * PICO_PER_USD - 1, limit) == 79
    warn = limit * 8000 // 10_000
    assert 80 * PICO_PER_USD >= warn and not (80 * PICO_PER_USD - 1 >= warn)


def test_every_surfaces_output_cap_bounds_the_estimate() -> None:
    for payload in ({"max_output_tokens": 100}, {"max_completion_tokens": 100}, {"max_tokens": 100},
                    {"generationConfig": {"maxOutputTokens": 100}}):
        assert estimate_pico(400, payload, [PRICE]) == 200 * 2_500_000 + 100 * 10_000_000, payload
    assert estimate_pico(400, {"generationConfig": {"maxOutputTokens": True}}, [PRICE]) == 200 * 2_500_000 + 4096 * 10_000_000


def test_an_absurd_output_cap_is_estimated_at_the_ceiling() -> None:
    from runtime.budget.cost import OUTPUT_TOKENS_CEILING

    assert estimate_pico(400, {"max_tokens": 10**12}, [PRICE]) == 200 * 2_500_000 + OUTPUT_TOKENS_CEILING * 10_000_000
