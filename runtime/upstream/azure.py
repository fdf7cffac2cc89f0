"""Azure OpenAI: the deployment in the path, `api-version` in the query, the key in `api-key`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from ..table import Provider, Target
from .base import UpstreamCall


def prepare(
    provider: Provider, credential: str | None, surface: str, target: Target, payload: dict[str, Any], stream: bool
) -> UpstreamCall:
    base = (provider.base_url or "").rstrip("/")
    deployment = quote(target.upstream_model, safe="")
    version = quote(provider.api_version or "", safe="")
    headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json"}
    if credential:
        headers["api-key"] = credential
    if surface == "chat":
        url = f"{base}/openai/deployments/{deployment}/chat/completions?api-version={version}"
        body = orjson.dumps({k: v for k, v in payload.items() if k != "model"})
    else:
        url = f"{base}/openai/v1/responses"
        body = orjson.dumps({**payload, "model": target.upstream_model})
    return UpstreamCall("POST", url, headers, body, stream)
