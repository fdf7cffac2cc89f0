"""Azure OpenAI: the deployment in the path, `api-version` in the query, the key in `api-key`."""

from __future__ import annotations

from urllib.parse import quote

import orjson

from ..table import Provider, Target
from .base import Outbound, UpstreamCall


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    base = (provider.base_url or "").rstrip("/")
    headers = {"content-type": "application/json", "accept": "text/event-stream" if out.stream else "application/json"}
    if credential:
        headers["api-key"] = credential
    if out.surface == "chat":
        deployment = quote(target.upstream_model, safe="")
        version = quote(provider.api_version or "", safe="")
        url = f"{base}/openai/deployments/{deployment}/chat/completions?api-version={version}"
        body = orjson.dumps({k: v for k, v in out.payload.items() if k != "model"})
    else:
        url = f"{base}/openai/v1/responses"
        body = orjson.dumps({**out.payload, "model": target.upstream_model})
    return UpstreamCall("POST", url, headers, body, out.stream)
