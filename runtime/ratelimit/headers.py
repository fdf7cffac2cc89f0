"""The rate-limit headers clients already read, in each surface's vendor's form, from the figures
admission reports: on the OpenAI surfaces `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
(reset as a duration, `1.5s`, `6m0s`), on Messages `anthropic-ratelimit-{requests,tokens}-{limit,
remaining,reset}` (reset as an RFC 3339 time). Where a request counts against several limits of
one kind, the headers show the one with the least left; where the provider's answer carries its
own headers of a kind, the client sees whichever of the two has less left (`merged`).

Every admitted answer under a limit carries them, so they are built with as little work as the
Python allows: names precomputed per form and kind, figures written with bytes `%`, the tightest
figures of the two kinds held in locals, the Messages form's reset time formatted once per second
of the clock, and an answer whose header names are all known to be neither form's not looked at
name by name."""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from operator import itemgetter

from .outcome import LimitFigures

Headers = list[tuple[bytes, bytes]]
KINDS = ("requests", "tokens")
PROVIDER_PREFIX = {"openai": b"x-ratelimit-", "anthropic": b"anthropic-ratelimit-"}
PREFIXES = tuple(PROVIDER_PREFIX.values())

PARTS = ("limit", "remaining", "reset")
NAMES = {
    "openai": {kind: tuple(f"x-ratelimit-{part}-{kind}".encode() for part in PARTS) for kind in KINDS},
    "anthropic": {kind: tuple(f"anthropic-ratelimit-{kind}-{part}".encode() for part in PARTS) for kind in KINDS},
}
"""Per vendor form, then kind, the names of the limit, remaining and reset headers."""

OPENAI_KINDS = {name: kind for kind, names in NAMES["openai"].items() for name in names}
"""The OpenAI form's header names (lower case), each with its kind."""

ANTHROPIC_KIND_PREFIXES = tuple((f"anthropic-ratelimit-{kind}-".encode(), kind) for kind in KINDS)
"""The Messages form's name prefix of each kind (its `input-tokens`/`output-tokens` headers are
neither kind: they pass through untouched)."""


_recent_openai: list[tuple[tuple[LimitFigures | None, LimitFigures | None], Headers]] = [((None, None), [])]
"""The OpenAI form's headers of the last figures they were built for, with those figures (one
tuple, replaced whole)."""


def limit_headers(protocol: str, figures: Iterable[LimitFigures], now: datetime | None = None) -> Headers:
    """Per kind (requests, tokens), the headers of the figures with the least remaining (the later
    reset on a tie), kinds in the order they first appear in `figures`; other kinds (`in_flight`)
    have no vendor header. `now` (default the clock) is the Messages form's base for reset times.

    The OpenAI form's headers depend on the figures alone, and a limit far from full reports the
    same figures answer after answer: the last ones built are reused while the figures stay the
    same (a miss costs one tuple comparison)."""
    if protocol != "openai" and protocol != "anthropic":
        return []
    first: LimitFigures | None = None
    second: LimitFigures | None = None
    for f in figures:
        kind = f[1]
        if kind != "requests" and kind != "tokens":
            continue
        if first is None:
            first = f
        elif first[1] == kind:
            if f[3] < first[3] or (f[3] == first[3] and f[4] > first[4]):
                first = f
        elif second is None or f[3] < second[3] or (f[3] == second[3] and f[4] > second[4]):
            second = f
    if first is None:
        return []
    if protocol == "openai":
        key = (first, second)
        recent = _recent_openai[0]
        if recent[0] == key:
            return [*recent[1]]
        headers: Headers = []
        for chosen in key:
            if chosen is not None:
                limit, left, reset = NAMES["openai"][chosen[1]]
                headers += ((limit, b"%d" % chosen[2]), (left, b"%d" % chosen[3]), (reset, reset_duration(chosen[4])))
        _recent_openai[0] = (key, headers)
        return [*headers]
    base = time.time_ns() // 1_000_000_000 if now is None else calendar.timegm(now.timetuple())
    headers = []
    for chosen in (first, second):
        if chosen is not None:
            limit, left, reset = NAMES["anthropic"][chosen[1]]
            headers += ((limit, b"%d" % chosen[2]), (left, b"%d" % chosen[3]),
                        (reset, reset_moment(base + math.ceil(chosen[4]))))
    return headers


def header_kind(protocol: str, name: bytes) -> str | None:
    """`requests` or `tokens` for a rate-limit header of `protocol`'s vendor form, else None."""
    if protocol == "openai":
        return OPENAI_KINDS.get(name) or OPENAI_KINDS.get(name.lower())
    if protocol == "anthropic":
        lowered = name.lower()
        for prefix, kind in ANTHROPIC_KIND_PREFIXES:
            if lowered.startswith(prefix):
                return kind
    return None


def _remaining(protocol: str, headers: Headers, kind: str) -> int | None:
    wanted = NAMES[protocol][kind][1]
    for name, value in headers:
        if name.lower() == wanted:
            try:
                return int(value)
            except ValueError:
                return None
    return None


def merged(protocol: str, upstream: Headers, ours: Headers) -> Headers:
    """`upstream` with the gateway's limit headers, kind by kind: a kind whose provider headers say
    less is left than the gateway's limit keeps the provider's, otherwise the gateway's replace them
    (a client pacing itself by `remaining` then paces by the tighter of the two).

    Most answers carry no provider limit header, and their names recur answer after answer: a
    name once seen to be neither form's is kept in a bounded set, and an answer whose names are
    all in it is not looked at name by name."""
    prefix = PROVIDER_PREFIX.get(protocol)
    if prefix is None or _PLAIN_NAMES.issuperset(map(_name, upstream)) or not _carries(upstream, prefix):
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


_name = itemgetter(0)


PLAIN_NAMES_SIZE = 4096
_PLAIN_NAMES: set[bytes] = set()
"""Header names seen to start with neither form's prefix, in any case."""


def _carries(headers: Headers, prefix: bytes) -> bool:
    size = len(prefix)
    carries = False
    for name, _ in headers:
        lowered = name.lower()
        if lowered[:size] == prefix:
            carries = True
        elif not lowered.startswith(PREFIXES):
            if len(_PLAIN_NAMES) >= PLAIN_NAMES_SIZE:
                _PLAIN_NAMES.clear()
            _PLAIN_NAMES.add(name)
    return carries


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
    return reset_duration(seconds).decode()


def reset_duration(seconds: float) -> bytes:
    """`duration` as the header's bytes."""
    if seconds < 1:
        if seconds <= 0:
            return b"0ms"
        return b"%dms" % math.ceil(seconds * 1000)
    if seconds < 60:
        return b"%gs" % round(seconds, 3)
    hours, rest = divmod(math.ceil(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return b"%dh%dm%ds" % (hours, minutes, secs) if hours else b"%dm%ds" % (minutes, secs)


@lru_cache(maxsize=64)
def reset_moment(epoch_s: int) -> bytes:
    """The Messages form's reset time, `2026-01-02T03:04:05Z`, of a whole second since the epoch
    (cached: under load every answer of one second shares a few)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s)).encode()
