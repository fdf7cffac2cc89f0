"""Upstream adapters (one per provider type) and the transports that carry their calls."""

from __future__ import annotations

from collections.abc import Callable

from ..table import Provider, Target
from . import anthropic, azure, gemini, mock, openai, openai_compatible
from .base import Outbound, RawBody, Transport, UpstreamCall, UpstreamResponse
from .http import HttpTransport

Prepare = Callable[[Provider, "str | None", Target, Outbound], UpstreamCall]

ADAPTERS: dict[str, Prepare] = {
    "openai": openai.prepare,
    "azure_openai": azure.prepare,
    "openai_compatible": openai_compatible.prepare,
    "anthropic": anthropic.prepare,
    "gemini": gemini.prepare,
    "mock": mock.prepare,
}

COUNTS_TOKENS: dict[str, frozenset[str]] = {
    "openai": frozenset({"responses"}),
    "anthropic": frozenset({"messages"}),
    "gemini": frozenset({"gemini"}),
    "mock": frozenset({"responses", "messages", "gemini"}),
}
"""Provider type -> the surfaces whose token-count requests its own counting endpoint answers
(`Outbound.count`): OpenAI's /v1/responses/input_tokens, Anthropic's /v1/messages/count_tokens,
Gemini's :countTokens. Azure OpenAI and OpenAI-compatible servers have none: the gateway estimates."""


def transport_for(provider: Provider) -> Transport:
    if provider.type == "mock":
        return mock.MockTransport()
    return HttpTransport(provider)


__all__ = ["ADAPTERS", "COUNTS_TOKENS", "Outbound", "RawBody", "Transport", "UpstreamCall", "UpstreamResponse", "transport_for"]
