"""The one error of a route whose targets all failed or were never tried, in words: what became
of each target, and why the ones not tried were not (the route's fallback conditions, and the
policy line that sets them)."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..access_log import Attempt
from ..table import Target

CONDITION_ORDER = ("5xx", "429", "timeout", "connect")
SKIPPED = {
    "circuit_open": "was skipped: cooling down after repeated failures",
    "no_credential": "was skipped: its credential is not set",
    "untranslatable": "was skipped: the request cannot be translated to its protocol",
}
OUTCOMES = {"timeout": "did not answer in time (timeout)", "connect": "could not be reached (connect)",
            "token_refresh": "could not get an access token: its token endpoint failed (5xx)"}


def condition_of(reason: str) -> str | None:
    """The `fallback.on` condition an attempt's reason counts as (None: none)."""
    if reason.isdigit():
        return "429" if reason == "429" else "5xx" if reason >= "500" else None
    if reason in ("timeout", "connect"):
        return reason
    return "5xx" if reason in ("invalid_answer", "token_refresh") else None


def route_failure_message(
    targets: Sequence[Target], attempts: Sequence[Attempt], fallback_on: Collection[str], fallback_source: str | None
) -> str:
    """E.g. `openai-primary (gpt-4o) answered 500; azure-east (gpt-4o) was not tried: this route
    falls back on timeout only, not on 5xx (profiles.yaml:12)`."""
    by_target: dict[tuple[str, str], list[Attempt]] = {}
    for attempt in attempts:
        by_target.setdefault((attempt["provider"], attempt["model"]), []).append(attempt)
    told = [f"{_name(provider, model)} {_outcomes(tried)}" for (provider, model), tried in by_target.items()]
    untried = [t for t in targets if (t.provider, t.model) not in by_target]
    if not untried:
        lead = "the only target failed: " if len(targets) <= 1 else f"all {len(targets)} targets failed: "
        return lead + "; ".join(told)
    names = " and ".join(_name(t.provider, t.model) for t in untried)
    verb = "was" if len(untried) == 1 else "were"
    why = _why_not_tried(attempts, fallback_on, fallback_source)
    return "; ".join([*told, f"{names} {verb} not tried: {why}"])


def _name(provider: str, model: str) -> str:
    return f"{provider} ({model})"


def _outcomes(tried: list[Attempt]) -> str:
    phrases: list[str] = []
    counts: list[int] = []
    for attempt in tried:
        phrase = _outcome(attempt)
        if phrases and phrases[-1] == phrase:
            counts[-1] += 1
        else:
            phrases.append(phrase)
            counts.append(1)
    return ", then ".join(p if n == 1 else f"{p} ({n} tries)" for p, n in zip(phrases, counts, strict=True))


def _outcome(attempt: Attempt) -> str:
    reason = attempt["reason"]
    if "detail" in attempt:
        return attempt["detail"]
    if reason.isdigit():
        return f"answered {reason}"
    return SKIPPED.get(reason) or OUTCOMES.get(reason) or reason


def _why_not_tried(attempts: Sequence[Attempt], fallback_on: Collection[str], source: str | None) -> str:
    last = next((a["reason"] for a in reversed(attempts) if a["reason"] not in SKIPPED), "")
    condition = condition_of(last)
    where = f" ({source})" if source else ""
    if last == "too_large":
        return "an answer over the gateway's size limits is not a fallback condition"
    if condition is None:
        return f"'{last}' is not a condition a route can fall back on"
    if not fallback_on:
        return f"this route does not fall back{where}"
    listed = ", ".join(c for c in CONDITION_ORDER if c in fallback_on)
    return f"this route falls back on {listed} only, not on {condition}{where}"
