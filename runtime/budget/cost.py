"""Money from usage, exactly.

Prices are integers of micro-USD per 1M tokens, so tokens x price is an integer number of
pico-USD (1e-12 USD): spend is summed in pico-USD integers and never rounds. A pico-USD integer
in a signed 64-bit counter holds up to ~9.2 million USD per budget window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ..table import Price

PICO_PER_MICRO = 1_000_000
PICO_PER_USD = 10**12
DEFAULT_MAX_OUTPUT_TOKENS = 4096
OUTPUT_TOKENS_CEILING = 1_000_000
"""No model answers with more; a larger cap in a request (say 10^12) is estimated at this, so one
request cannot reserve a team's whole budget or overflow a 64-bit counter."""
OUTPUT_CAP_FIELDS = ("max_output_tokens", "max_completion_tokens", "max_tokens")
"""The request's output cap, by the first of these that is a positive integer (JSON integers only:
`true` is no cap): Responses, chat (both spellings), Anthropic; Gemini's is in `generationConfig`."""
BYTES_PER_TOKEN_FLOOR = 2
MICRO_USD = Decimal("0.000001")


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def known(self) -> bool:
        return bool(self.input_tokens or self.output_tokens)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_from(payload: Mapping[str, Any] | None) -> Usage | None:
    """Usage from any surface's answer or stream event; None when the payload carries none.

    OpenAI chat (`prompt_tokens`), OpenAI Responses (`input_tokens` including cached ones),
    Anthropic (`input_tokens` excluding cache reads and writes, in a message, `message_start` or
    `message_delta`), Gemini (`usageMetadata`).
    """
    if not isinstance(payload, Mapping):
        return None
    if isinstance(payload.get("usageMetadata"), Mapping):
        meta = payload["usageMetadata"]
        return Usage(
            _int(meta.get("promptTokenCount")),
            _int(meta.get("cachedContentTokenCount")),
            _int(meta.get("candidatesTokenCount")) + _int(meta.get("thoughtsTokenCount")),
            _int(meta.get("thoughtsTokenCount")),
        )
    usage = payload.get("usage")
    for holder in ("response", "message"):
        if usage is None and isinstance(payload.get(holder), Mapping):
            usage = payload[holder].get("usage")
    if not isinstance(usage, Mapping):
        return None
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        details = usage.get("prompt_tokens_details") or {}
        out_details = usage.get("completion_tokens_details") or {}
        return Usage(
            _int(usage.get("prompt_tokens")),
            _int(details.get("cached_tokens")) if isinstance(details, Mapping) else 0,
            _int(usage.get("completion_tokens")),
            _int(out_details.get("reasoning_tokens")) if isinstance(out_details, Mapping) else 0,
        )
    if "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage:
        read = _int(usage.get("cache_read_input_tokens"))
        written = _int(usage.get("cache_creation_input_tokens"))
        return Usage(_int(usage.get("input_tokens")) + read + written, read, _int(usage.get("output_tokens")), 0)
    if "input_tokens" in usage or "output_tokens" in usage:
        details = usage.get("input_tokens_details") or {}
        out_details = usage.get("output_tokens_details") or {}
        return Usage(
            _int(usage.get("input_tokens")),
            _int(details.get("cached_tokens")) if isinstance(details, Mapping) else 0,
            _int(usage.get("output_tokens")),
            _int(out_details.get("reasoning_tokens")) if isinstance(out_details, Mapping) else 0,
        )
    return None


def merge(a: Usage | None, b: Usage) -> Usage:
    """Streams report usage in parts (Anthropic: input at the start, output at the end) or as
    running totals (Gemini): the largest figure of each kind is the answer's."""
    if a is None:
        return b
    return Usage(
        max(a.input_tokens, b.input_tokens),
        max(a.cached_input_tokens, b.cached_input_tokens),
        max(a.output_tokens, b.output_tokens),
        max(a.reasoning_tokens, b.reasoning_tokens),
    )


def cost_pico(usage: Usage, price: Price) -> int:
    """Cached input at the cached price, reasoning (part of output) at the reasoning price."""
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    reasoning = min(usage.reasoning_tokens, usage.output_tokens)
    return (
        (usage.input_tokens - cached) * price.input
        + cached * price.cached_input
        + (usage.output_tokens - reasoning) * price.output
        + reasoning * price.reasoning
    )


def max_output_tokens(payload: Mapping[str, Any]) -> int:
    """The request's own output cap: Responses, chat (both spellings), Anthropic, Gemini."""
    for name in OUTPUT_CAP_FIELDS:
        value = payload.get(name)
        if type(value) is int and value > 0:
            return value if value < OUTPUT_TOKENS_CEILING else OUTPUT_TOKENS_CEILING
    config = payload.get("generationConfig")
    if config is not None and isinstance(config, Mapping):
        value = config.get("maxOutputTokens")
        if type(value) is int and value > 0:
            return value if value < OUTPUT_TOKENS_CEILING else OUTPUT_TOKENS_CEILING
    return DEFAULT_MAX_OUTPUT_TOKENS


def estimate_pico(body_bytes: int, payload: Mapping[str, Any], prices: list[Price]) -> int:
    """An upper estimate of a request's cost: a token per two body bytes (real prompts run about
    four), the output at its cap (or 4,096 tokens), at the dearest target's price."""
    return estimates(body_bytes, payload, prices)[0]


def estimates(body_bytes: int, payload: Mapping[str, Any], prices: list[Price]) -> tuple[int, int]:
    """`estimate_pico`, and the tokens (input + output) it prices: what a token rate limit reserves
    at admission. The request's output cap is read once for both."""
    input_tokens = max(1, body_bytes // BYTES_PER_TOKEN_FLOOR)
    output = max_output_tokens(payload)
    pico = 0
    for p in prices:
        cost = input_tokens * p.input + output * (p.output if p.output >= p.reasoning else p.reasoning)
        if cost > pico:
            pico = cost
    return pico, input_tokens + output


def usd(pico: int) -> str:
    """Dollars with the precision the amount needs, the one way money is written for people:
    cents at least, down to micro-dollars (the precision of a limit or a price), trailing zeros
    trimmed, rounded half up: $12.50, $0.001, $0.0015, $100.04. A non-zero amount below half a
    micro-dollar is written exactly ($0.000000025) rather than as nothing."""
    exact = Decimal(pico) / PICO_PER_USD
    value = exact.quantize(MICRO_USD, rounding=ROUND_HALF_UP)
    if pico and not value:
        value = exact
    whole, _, fraction = f"{value:,f}".partition(".")
    return f"${whole}.{fraction.rstrip('0').ljust(2, '0')}"
