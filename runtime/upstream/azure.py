"""Azure OpenAI: the deployment in the path, `api-version` in the query, the key in `api-key`."""

from __future__ import annotations

from urllib.parse import quote

from ..table import Provider, Target
from .base import Outbound, UpstreamCall
from .body import with_model, without_model


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    base = (provider.base_url or "").rstrip("/")
    headers = {"content-type": "application/json", "accept": "text/event-stream" if out.stream else "application/json"}
    if credential:
        headers["api-key"] = credential
    if out.surface == "chat":
        deployment = quote(target.upstream_model, safe="")
        version = quote(provider.api_version or "", safe="")
        url = f"{base}/openai/deployments/{deployment}/chat/completions?api-version={version}"
        body = without_model(out)
    else:
        url = f"{base}/openai/v1/responses"
        body = with_model(out, target.upstream_model)
    return UpstreamCall("POST", url, headers, body, out.stream)
