"""Upstream adapters (one per provider type) and the transports that carry their calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..table import Provider, Target
from . import anthropic, azure, bedrock, gemini, mock, openai, openai_compatible, vertex
from .base import Outbound, RawBody, Transport, UpstreamCall, UpstreamResponse
from .http import HttpTransport

Prepare = Callable[[Provider, "str | None", Target, Outbound], UpstreamCall]

ADAPTERS: dict[str, Prepare] = {
    "openai": openai.prepare,
    "azure_openai": azure.prepare,
    "openai_compatible": openai_compatible.prepare,
    "anthropic": anthropic.prepare,
    "gemini": gemini.prepare,
    "bedrock": bedrock.prepare,
    "vertex": vertex.prepare,
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


def transport_for(provider: Provider, cloud_credentials: Mapping[str, str] | None = None) -> Transport:
    """The provider's transport; a bedrock or vertex one signs its calls with `cloud_credentials`."""
    if provider.type == "mock":
        return mock.MockTransport()
    # botocore and google-auth take about half a second to import: only a table with such a
    # provider pays for them, not every command that imports the runtime (`policy budgets`).
    if provider.type == "bedrock":
        from .bedrock_transport import BedrockTransport

        return BedrockTransport(provider, cloud_credentials or {})
    if provider.type == "vertex":
        from .vertex_transport import VertexTransport

        return VertexTransport(provider, cloud_credentials or {})
    return HttpTransport(provider)


__all__ = ["ADAPTERS", "COUNTS_TOKENS", "Outbound", "RawBody", "Transport", "UpstreamCall", "UpstreamResponse", "transport_for"]
