"""Token counts: Anthropic's `count_tokens`, Gemini's `:countTokens` and OpenAI's Responses
`input_tokens`, decided like any request (key, allow-list, alias) and answered by the route's first
target's own counting endpoint when its provider has one, translated by the hub when the target
counts in another protocol (`count_translation.py`); otherwise estimated by the gateway (a token
per four bytes of the prompt's JSON). `<prefix>Token-Count` says which
(`provider` or `estimate`), and so does the access log's `token_count`.

A count generates nothing: it is neither charged to budgets nor admitted under rate limits, and it
goes to the first target only (a count from another model than the one that would answer is no
count at all), its failures answered as any request's are.

Clients rely on the figure: Claude Code compacts its context by it, and an undercount ends in
"prompt is too long". Only a target whose provider has no counting endpoint (Azure OpenAI,
OpenAI-compatible servers) is estimated.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from ..budget.charge import Charge
from ..count_translation import count_body
from ..surfaces import Surface
from ..upstream import COUNTS_TOKENS
from .exchange import Exchange
from .fallback import Fallback

JSON = [(b"content-type", b"application/json")]
COUNTED: dict[str, tuple[str, ...]] = {
    "messages": ("system", "messages", "tools"),
    "responses": ("instructions", "input", "tools"),
    "gemini": ("contents", "systemInstruction", "tools"),
}
"""The parts of a request an estimate counts, by surface."""


class TokenCounts:
    def __init__(self, fallback: Fallback) -> None:
        self.fallback = fallback

    async def count(self, exchange: Exchange) -> int:
        """The allowed count request (`exchange.request`) answered by the provider or estimated."""
        decision, request, surface = exchange.decision, exchange.request, exchange.surface
        first = decision.targets[0]
        provider = exchange.serving.table.providers[first.provider]
        exchange.charge = Charge(None)
        if COUNTS_TOKENS.get(provider.type):
            exchange.record.token_count = "provider"
            exchange.decision = replace(decision, targets=(first,))
            exchange.request = replace(request, count=True, stream=False, cache_mode="respect", cache_salt=False)
            return await self.fallback.forward(exchange)
        exchange.record.token_count = "estimate"
        headers = [*JSON, (exchange.header(b"token-count"), b"estimate"), (exchange.header(b"fallback-count"), b"0")]
        await exchange.respond(200, estimate(surface, request.payload), headers)
        return 200


def estimate(surface: Surface, payload: dict[str, Any]) -> bytes:
    """The surface's count answer, estimated: a token per four bytes of the counted parts' JSON."""
    source = payload
    if surface.name == "gemini" and isinstance(payload.get("generateContentRequest"), dict):
        source = payload["generateContentRequest"]
    counted = {k: source.get(k) for k in COUNTED[surface.name]}
    return orjson.dumps(count_body(surface.name, max(1, len(orjson.dumps(counted)) // 4)))
