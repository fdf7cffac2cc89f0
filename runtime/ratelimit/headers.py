"""The rate-limit headers clients already read, in each surface's vendor's form, from the figures
admission reports: on the OpenAI surfaces `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
(reset as a duration, `1.5s`, `6m0s`), on Messages `anthropic-ratelimit-{requests,tokens}-{limit,
remaining,reset}` (reset as an RFC 3339 time). Where a request counts against several limits of
one kind, the headers show the one with the least left; where the provider's answer carries its
own headers of a kind, the client sees whichever of the two has less left (`merged`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from .outcome import LimitFigures

Headers = list[tuple[bytes, bytes]]
KINDS = ("requests", "tokens")
PROVIDER_PREFIX = {"openai": b"x-ratelimit-", "anthropic": b"anthropic-ratelimit-"}


def tightest(figures: Iterable[LimitFigures]) -> dict[str, LimitFigures]:
    """Per kind (requests, tokens), the figures with the least remaining (the later reset on a tie)."""
    chosen: dict[str, LimitFigures] = {}
    for f in figures:
        kind = f.kind
        if kind not in KINDS:
            continue
        held = chosen.get(kind)
        if held is None or f.remaining < held.remaining or (f.remaining == held.remaining and f.reset_s > held.reset_s):
            chosen[kind] = f
    return chosen


NAMES = {
    **{("openai", kind): tuple(f"x-ratelimit-{part}-{kind}".encode() for part in ("limit", "remaining", "reset"))
       for kind in KINDS},
    **{("anthropic", kind): tuple(f"anthropic-ratelimit-{kind}-{part}".encode() for part in ("limit", "remaining", "reset"))
       for kind in KINDS},
}
"""Per vendor form and kind, the names of the limit, remaining and reset headers."""


FORMS = {protocol: {kind: NAMES[protocol, kind] for kind in KINDS} for protocol in PROVIDER_PREFIX}
"""`NAMES` by vendor form, then kind."""


def limit_headers(protocol: str, figures: Iterable[LimitFigures], now: datetime | None = None) -> Headers:
    forms = FORMS.get(protocol)
    if forms is None:
        return []
    headers: Headers = []
    for kind, f in tightest(figures).items():
        limit, left, reset = forms[kind]
        if protocol == "openai":
            at = duration(f.reset_s).encode()
        else:
            moment = (now or datetime.now(UTC)) + timedelta(seconds=math.ceil(f.reset_s))
            at = moment.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
        headers += ((limit, str(f.limit).encode()), (left, str(f.remaining).encode()), (reset, at))
    return headers


def header_kind(protocol: str, name: bytes) -> str | None:
    """`requests` or `tokens` for a rate-limit header of `protocol`'s vendor form, else None."""
    text = name.decode("latin-1").lower()
    for kind in KINDS:
        if protocol == "openai" and text in (f"x-ratelimit-limit-{kind}", f"x-ratelimit-remaining-{kind}",
                                             f"x-ratelimit-reset-{kind}"):
            return kind
        if protocol == "anthropic" and text.startswith(f"anthropic-ratelimit-{kind}-"):
            return kind
    return None


def _remaining(protocol: str, headers: Headers, kind: str) -> int | None:
    wanted = f"x-ratelimit-remaining-{kind}" if protocol == "openai" else f"anthropic-ratelimit-{kind}-remaining"
    for name, value in headers:
        if name.decode("latin-1").lower() == wanted:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def merged(protocol: str, upstream: Headers, ours: Headers) -> Headers:
    """`upstream` with the gateway's limit headers, kind by kind: a kind whose provider headers say
    less is left than the gateway's limit keeps the provider's, otherwise the gateway's replace them
    (a client pacing itself by `remaining` then paces by the tighter of the two)."""
    prefix = PROVIDER_PREFIX.get(protocol)
    if prefix is None or not _carries(upstream, prefix):
        return upstream + ours
    kinds = {kind for name, _ in ours if (kind := header_kind(protocol, name)) is not None}
    tighter = set()
    for kind in kinds:
        theirs, mine = _remaining(protocol, upstream, kind), _remaining(protocol, ours, kind)
        if theirs is not None and mine is not None and theirs < mine:
            tighter.add(kind)
    kept = [(k, v) for k, v in upstream if (kind := header_kind(protocol, k)) is None or kind not in kinds
            or kind in tighter]
    return kept + [(k, v) for k, v in ours if header_kind(protocol, k) not in tighter]


def _carries(headers: Headers, prefix: bytes) -> bool:
    size = len(prefix)
    for name, _ in headers:
        if name[:size].lower() == prefix:
            return True
    return False


def retry_after_headers(protocol: str, retry_after_s: float) -> Headers:
    """`Retry-After` in whole seconds, rounded up; the OpenAI SDKs also read `retry-after-ms`."""
    headers: Headers = [(b"retry-after", str(retry_after_seconds(retry_after_s)).encode())]
    if protocol == "openai":
        headers.append((b"retry-after-ms", str(max(1, math.ceil(retry_after_s * 1000))).encode()))
    return headers


def retry_after_seconds(retry_after_s: float) -> int:
    return max(1, math.ceil(retry_after_s))


def duration(seconds: float) -> str:
    """OpenAI's reset form: `20ms`, `1.5s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        millis = math.ceil(seconds * 1000)
        return f"{millis if millis > 0 else 0}ms"
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    whole = math.ceil(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"
