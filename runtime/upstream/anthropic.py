"""Anthropic: `base_url` (without /v1) + /v1/messages (a token count: /v1/messages/count_tokens),
`x-api-key`, the client's `anthropic-version` and `anthropic-beta` passed on (never pinned)."""

from __future__ import annotations

from ..table import Provider, Target
from .base import Outbound, UpstreamCall
from .body import with_model

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    base = (provider.base_url or DEFAULT_BASE_URL).rstrip("/")
    if base.endswith("/v1"):
        base = base[:-3]
    headers = {
        "content-type": "application/json",
        "accept": "text/event-stream" if out.stream else "application/json",
        "anthropic-version": out.client_headers.get("anthropic-version", DEFAULT_VERSION),
    }
    if "anthropic-beta" in out.client_headers:
        headers["anthropic-beta"] = out.client_headers["anthropic-beta"]
    if credential:
        headers["x-api-key"] = credential
    body = with_model(out, target.upstream_model)
    path = "/v1/messages/count_tokens" if out.count else "/v1/messages"
    return UpstreamCall("POST", base + path, headers, body, out.stream)
