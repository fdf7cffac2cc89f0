"""Google Gemini: the model and method in the path (`?alt=sse` to stream), `x-goog-api-key`."""

from __future__ import annotations

from urllib.parse import quote

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
    return UpstreamCall("POST", url, headers, without_model(out), out.stream)
