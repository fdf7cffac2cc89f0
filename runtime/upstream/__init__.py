"""Upstream adapters (one per provider type) and the transports that carry their calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..table import Provider, Target
from . import anthropic, azure, bedrock, gemini, mock, openai, vertex
from .base import Outbound, RawBody, Transport, UpstreamCall, UpstreamResponse
from .http import HttpTransport

Prepare = Callable[[Provider, "str | None", Target, Outbound], UpstreamCall]

ADAPTERS: dict[str, Prepare] = {
    "openai": openai.prepare,
    "azure_openai": azure.prepare,
    "anthropic": anthropic.prepare,
    "gemini": gemini.prepare,
    "bedrock": bedrock.prepare,
    "vertex": vertex.prepare,
    "mock": mock.prepare,
}


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


__all__ = ["ADAPTERS", "Outbound", "RawBody", "Transport", "UpstreamCall", "UpstreamResponse", "transport_for"]
