"""Upstream adapters (one per provider type) and the transports that carry their calls."""

from __future__ import annotations

from collections.abc import Callable

from ..table import Provider, Target
from . import anthropic, azure, gemini, mock, openai
from .base import Outbound, RawBody, Transport, UpstreamCall, UpstreamResponse
from .http import HttpTransport

Prepare = Callable[[Provider, "str | None", Target, Outbound], UpstreamCall]

ADAPTERS: dict[str, Prepare] = {
    "openai": openai.prepare,
    "azure_openai": azure.prepare,
    "anthropic": anthropic.prepare,
    "gemini": gemini.prepare,
    "mock": mock.prepare,
}


def transport_for(provider: Provider) -> Transport:
    if provider.type == "mock":
        return mock.MockTransport()
    return HttpTransport(provider)


__all__ = ["ADAPTERS", "Outbound", "RawBody", "Transport", "UpstreamCall", "UpstreamResponse", "transport_for"]
