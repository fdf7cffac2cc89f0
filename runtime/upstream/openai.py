"""OpenAI and OpenAI-compatible providers: `base_url` + the surface's path, Bearer credential."""

from __future__ import annotations

from typing import Any

import orjson

from ..table import Provider, Target
from .base import UpstreamCall

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PATHS = {"chat": "/chat/completions", "responses": "/responses"}


def prepare(
    provider: Provider, credential: str | None, surface: str, target: Target, payload: dict[str, Any], stream: bool
) -> UpstreamCall:
    base = provider.base_url or DEFAULT_BASE_URL
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
    if credential:
        headers["authorization"] = f"Bearer {credential}"
    body = orjson.dumps({**payload, "model": target.upstream_model})
    return UpstreamCall("POST", base + PATHS[surface], headers, body, stream)
