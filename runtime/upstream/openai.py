"""OpenAI and OpenAI-compatible providers: `base_url` (with /v1) + the surface's path, Bearer credential."""

from __future__ import annotations

from ..table import Provider, Target
from .base import Outbound, UpstreamCall
from .body import with_model

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PATHS = {"chat": "/chat/completions", "responses": "/responses"}


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    base = provider.base_url or DEFAULT_BASE_URL
    headers = {"content-type": "application/json", "accept": "text/event-stream" if out.stream else "application/json"}
    if credential:
        headers["authorization"] = f"Bearer {credential}"
    body = with_model(out, target.upstream_model)
    return UpstreamCall("POST", base + PATHS[out.surface], headers, body, out.stream)
