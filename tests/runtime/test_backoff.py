"""How long a retry on the same target waits: the provider's Retry-After, in seconds or as an
HTTP-date, capped at 30 s; else a jittered exponential backoff."""

from __future__ import annotations

from datetime import UTC, datetime

from runtime.proxy.fallback import backoff_s

NOW = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)


def test_retry_after_in_seconds() -> None:
    assert backoff_s(0, b"1.5", NOW) == 1.5


def test_retry_after_as_an_http_date() -> None:
    assert backoff_s(0, b"Wed, 21 Oct 2015 07:28:05 GMT", NOW) == 5.0


def test_retry_after_in_the_past_means_now_and_far_ahead_moves_on() -> None:
    assert backoff_s(0, b"Wed, 21 Oct 2015 07:27:00 GMT", NOW) == 0.0
    assert backoff_s(0, b"Thu, 22 Oct 2015 07:28:00 GMT", NOW) is None, "a day away: move on, do not wait"
    assert backoff_s(0, b"3600", NOW) is None
    assert backoff_s(0, b"30", NOW) == 30.0


def test_unreadable_retry_after_falls_back_to_jittered_backoff() -> None:
    waits = [backoff_s(2, b"soon", NOW) for _ in range(50)]
    assert all(0 <= w <= 1.0 for w in waits) and len(set(waits)) > 1
