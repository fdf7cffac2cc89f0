"""OpenAI: `base_url` (with /v1) + the surface's path (a token count: /responses/input_tokens), Bearer credential."""

from __future__ import annotations

from ..table import Provider, Target
from .base import Outbound, UpstreamCall
from .body import with_model

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PATHS = {"chat": "/chat/completions", "responses": "/responses"}
COUNT_PATH = "/responses/input_tokens"


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    base = provider.base_url or DEFAULT_BASE_URL
    headers = {"content-type": "application/json", "accept": "text/event-stream" if out.stream else "application/json"}
    if credential:
        headers["authorization"] = f"Bearer {credential}"
    body = with_model(out, target.upstream_model)
    path = COUNT_PATH if out.count else PATHS[out.surface]
    return UpstreamCall("POST", base + path, headers, body, out.stream)
