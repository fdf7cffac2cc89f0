"""Google Gemini: the model and method in the path (`?alt=sse` to stream; `:countTokens` to count),
`x-goog-api-key`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from ..table import Provider, Target
from .base import Outbound, UpstreamCall
from .body import without_model

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    base = (provider.base_url or DEFAULT_BASE_URL).rstrip("/")
    if base.endswith("/v1beta"):
        base = base[: -len("/v1beta")]
    method = out.gemini_method or ("streamGenerateContent" if out.stream else "generateContent")
    url = f"{base}/v1beta/models/{quote(target.upstream_model, safe='')}:{method}"
    if method == "streamGenerateContent":
        url += "?alt=sse"
    headers = {"content-type": "application/json"}
    if credential:
        headers["x-goog-api-key"] = credential
    body = _count_body(out.payload, target.upstream_model) if out.count else None
    return UpstreamCall("POST", url, headers, body or without_model(out), out.stream)


def _count_body(payload: dict[str, Any], model: str) -> bytes | None:
    """A `countTokens` body whose `generateContentRequest` names a model names the one the route
    resolved to (an alias's target, not the name the client asked for); None when it names none."""
    request = payload.get("generateContentRequest")
    if not isinstance(request, dict) or "model" not in request:
        return None
    rest = {k: v for k, v in payload.items() if k != "model"}
    return orjson.dumps({**rest, "generateContentRequest": {**request, "model": f"models/{model}"}})
