"""Upstream adapters (one per provider type) and the transports that carry their calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..table import Provider, Target
from . import azure, mock, openai
from .base import Transport, UpstreamCall, UpstreamFailure, UpstreamResponse
from .http import HttpTransport

Prepare = Callable[[Provider, "str | None", str, Target, dict[str, Any], bool], UpstreamCall]

ADAPTERS: dict[str, Prepare] = {
    "openai": openai.prepare,
    "azure_openai": azure.prepare,
    "mock": mock.prepare,
}


def transport_for(provider: Provider) -> Transport:
    if provider.type == "mock":
        return mock.MockTransport()
    return HttpTransport(provider)


__all__ = ["ADAPTERS", "Transport", "UpstreamCall", "UpstreamFailure", "UpstreamResponse", "transport_for"]
