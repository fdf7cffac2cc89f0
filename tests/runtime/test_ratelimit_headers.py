"""The rate-limit headers' figures: OpenAI's reset durations, the tightest limit of each kind, and
Retry-After rounded up."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runtime.ratelimit.headers import duration, limit_headers, merged, retry_after_headers
from runtime.ratelimit.outcome import LimitFigures


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0ms"), (0.0201, "21ms"), (1.0, "1s"), (1.5, "1.5s"), (59.9994, "59.999s"), (360.0, "6m0s"), (3723.2, "1h2m4s"),
])
def test_openai_reset_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_each_kind_shows_the_limit_with_least_left_and_in_flight_has_no_vendor_header() -> None:
    figures = [
        LimitFigures("team/eng", "requests", 100, 40, 30.0),
        LimitFigures("per-engineer/alice", "requests", 10, 3, 12.0),
        LimitFigures("per-engineer/alice", "tokens", 1000, 900, 6.0),
        LimitFigures("per-engineer/alice", "in_flight", 4, 3, 0.0),
    ]
    openai = dict(limit_headers("openai", figures))
    assert openai == {
        b"x-ratelimit-limit-requests": b"10", b"x-ratelimit-remaining-requests": b"3",
        b"x-ratelimit-reset-requests": b"12s", b"x-ratelimit-limit-tokens": b"1000",
        b"x-ratelimit-remaining-tokens": b"900", b"x-ratelimit-reset-tokens": b"6s",
    }
    anthropic = dict(limit_headers("anthropic", figures, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)))
    assert anthropic[b"anthropic-ratelimit-requests-reset"] == b"2026-01-02T03:04:17Z"
    assert anthropic[b"anthropic-ratelimit-tokens-remaining"] == b"900"
    assert limit_headers("gemini", figures) == []


def test_retry_after_is_whole_seconds_rounded_up_with_milliseconds_for_openai() -> None:
    assert retry_after_headers("openai", 0.25) == [(b"retry-after", b"1"), (b"retry-after-ms", b"250")]
    assert retry_after_headers("anthropic", 2.01) == [(b"retry-after", b"3")]


def test_a_providers_headers_of_a_kind_stay_when_they_have_less_left_than_the_gateways() -> None:
    ours = limit_headers("openai", [LimitFigures("team/eng", "requests", 100, 40, 30.0),
                                     LimitFigures("team/eng", "tokens", 10_000, 9_000, 6.0)])
    upstream = [(b"content-type", b"application/json"), (b"x-ratelimit-limit-requests", b"5000"),
                (b"x-ratelimit-remaining-requests", b"12"), (b"x-ratelimit-reset-requests", b"1s"),
                (b"x-ratelimit-limit-tokens", b"2000000"), (b"x-ratelimit-remaining-tokens", b"1999000"),
                (b"x-ratelimit-reset-tokens", b"0s")]
    assert dict(merged("openai", upstream, ours)) == {
        b"content-type": b"application/json", b"x-ratelimit-limit-requests": b"5000",
        b"x-ratelimit-remaining-requests": b"12", b"x-ratelimit-reset-requests": b"1s",
        b"x-ratelimit-limit-tokens": b"10000", b"x-ratelimit-remaining-tokens": b"9000", b"x-ratelimit-reset-tokens": b"6s",
    }
    assert len(merged("openai", upstream, ours)) == 7


def test_the_gateways_anthropic_headers_replace_a_providers_with_more_left() -> None:
    ours = limit_headers("anthropic", [LimitFigures("team/eng", "requests", 100, 40, 30.0)],
                         datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    upstream = [(b"anthropic-ratelimit-requests-limit", b"4000"), (b"anthropic-ratelimit-requests-remaining", b"3999"),
                (b"anthropic-ratelimit-requests-reset", b"2026-01-02T03:04:06Z"),
                (b"anthropic-ratelimit-tokens-remaining", b"7")]
    assert dict(merged("anthropic", upstream, ours)) == {
        b"anthropic-ratelimit-requests-limit": b"100", b"anthropic-ratelimit-requests-remaining": b"40",
        b"anthropic-ratelimit-requests-reset": b"2026-01-02T03:04:35Z", b"anthropic-ratelimit-tokens-remaining": b"7",
    }
