"""The rate-limit headers equal, byte for byte, what the plain formatting of their figures gives:
the memo, the reset time cache and the provider header scan change how fast they are built, never
what a client reads. The reference below is the straightforward form they are checked against."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.ratelimit.headers import Headers, duration, limit_headers, merged
from runtime.ratelimit.outcome import LimitFigures

KINDS = ("requests", "tokens")


def reference_duration(seconds: float) -> str:
    if seconds < 1:
        millis = math.ceil(seconds * 1000)
        return f"{millis if millis > 0 else 0}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    hours, rest = divmod(math.ceil(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"


def reference_limit_headers(protocol: str, figures: list[LimitFigures], now: datetime) -> Headers:
    chosen: dict[str, LimitFigures] = {}
    for f in figures:
        held = chosen.get(f.kind)
        if f.kind in KINDS and (held is None or f.remaining < held.remaining
                                or (f.remaining == held.remaining and f.reset_s > held.reset_s)):
            chosen[f.kind] = f
    headers: Headers = []
    for kind, f in chosen.items():
        if protocol == "openai":
            names = [f"x-ratelimit-{part}-{kind}" for part in ("limit", "remaining", "reset")]
            at = reference_duration(f.reset_s)
        else:
            names = [f"anthropic-ratelimit-{kind}-{part}" for part in ("limit", "remaining", "reset")]
            at = (now + timedelta(seconds=math.ceil(f.reset_s))).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers += [(n.encode(), v.encode()) for n, v in zip(names, (str(f.limit), str(f.remaining), at), strict=True)]
    return headers


def reference_kind(protocol: str, name: bytes) -> str | None:
    text = name.decode("latin-1").lower()
    for kind in KINDS:
        if protocol == "openai" and text in [f"x-ratelimit-{part}-{kind}" for part in ("limit", "remaining", "reset")]:
            return kind
        if protocol == "anthropic" and text.startswith(f"anthropic-ratelimit-{kind}-"):
            return kind
    return None


def reference_remaining(protocol: str, headers: Headers, kind: str) -> int | None:
    wanted = f"x-ratelimit-remaining-{kind}" if protocol == "openai" else f"anthropic-ratelimit-{kind}-remaining"
    for name, value in headers:
        if name.decode("latin-1").lower() == wanted:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def reference_merged(protocol: str, upstream: Headers, ours: Headers) -> Headers:
    kinds = {kind for name, _ in ours if (kind := reference_kind(protocol, name)) is not None}
    tighter = {kind for kind in kinds
               if (theirs := reference_remaining(protocol, upstream, kind)) is not None
               and (mine := reference_remaining(protocol, ours, kind)) is not None and theirs < mine}
    kept = [(k, v) for k, v in upstream if (kind := reference_kind(protocol, k)) is None or kind not in kinds
            or kind in tighter]
    return kept + [(k, v) for k, v in ours if reference_kind(protocol, k) not in tighter]


resets = st.one_of(st.sampled_from([0.0, -0.5, 0.0004, 0.9995, 0.99999, 1.0, 1.5, 59.9994, 59.9996, 60.0, 3599.5, 86_400.0]),
                   st.floats(min_value=-1.0, max_value=200_000.0, allow_nan=False))
figures = st.lists(st.builds(LimitFigures, st.sampled_from(["team/eng", "per-engineer/alice", "org"]),
                             st.sampled_from(["requests", "tokens", "in_flight", "other"]),
                             st.integers(1, 10**10), st.integers(0, 10**10), resets), max_size=6)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


@settings(max_examples=400, deadline=None)
@given(figures=figures, now=moments)
def test_the_headers_are_the_plain_formatting_of_the_tightest_figures(figures: list[LimitFigures], now: datetime) -> None:
    for _ in range(2):
        assert limit_headers("openai", figures) == reference_limit_headers("openai", figures, now)
        assert limit_headers("anthropic", figures, now) == reference_limit_headers("anthropic", figures, now)
    assert limit_headers("gemini", figures) == []


@settings(max_examples=400, deadline=None)
@given(seconds=resets)
def test_reset_durations_are_the_plain_formatting(seconds: float) -> None:
    assert duration(seconds) == reference_duration(seconds)


def test_the_messages_reset_counts_from_the_clock_by_default() -> None:
    figures = [LimitFigures("team/eng", "requests", 100, 40, 30.2), LimitFigures("team/eng", "tokens", 9, 1, 0.0)]
    before = datetime.now(UTC)
    headers = limit_headers("anthropic", figures)
    after = datetime.now(UTC)
    assert headers in (reference_limit_headers("anthropic", figures, before),
                       reference_limit_headers("anthropic", figures, after))


def test_an_answers_headers_are_its_own_to_change() -> None:
    figures = [LimitFigures("team/eng", "requests", 100, 40, 30.0)]
    limit_headers("openai", figures).append((b"x-extra", b"1"))
    assert limit_headers("openai", figures) == reference_limit_headers("openai", figures, datetime.now(UTC))


names = st.sampled_from([
    b"content-type", b"x-request-id", b"x-ratelimit-limit-requests", b"X-RateLimit-Remaining-Requests",
    b"x-ratelimit-reset-requests", b"x-ratelimit-remaining-tokens", b"X-RATELIMIT-LIMIT-TOKENS", b"x-ratelimit-other",
    b"anthropic-ratelimit-requests-remaining", b"Anthropic-RateLimit-Tokens-Remaining", b"anthropic-ratelimit-tokens-limit",
    b"anthropic-ratelimit-input-tokens-remaining", b"anthropic-ratelimit-requests-reset", b"x-langwatch-provider",
])
values = st.one_of(st.integers(0, 10**10).map(lambda n: str(n).encode()), st.sampled_from([b"", b"1s", b" 12 ", b"x"]))
upstreams = st.lists(st.tuples(names, values), max_size=8)


@settings(max_examples=600, deadline=None)
@given(protocol=st.sampled_from(["openai", "anthropic", "gemini"]), upstream=upstreams, figures=figures)
def test_merging_with_a_providers_headers_is_the_plain_kind_by_kind_choice(
        protocol: str, upstream: Headers, figures: list[LimitFigures]) -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ours = limit_headers(protocol, figures, now)
    expected = upstream + ours if protocol == "gemini" else reference_merged(protocol, upstream, ours)
    for _ in range(2):
        assert merged(protocol, upstream, ours) == expected
