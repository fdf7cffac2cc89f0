"""Google Vertex AI: Claude through `rawPredict`/`streamRawPredict` (the Messages body without
`model`, with Vertex's `anthropic_version`) and Gemini through `generateContent`/
`streamGenerateContent`, both under `/v1/projects/{project}/locations/{location}/publishers/...`.

A Gemini stream is always asked for as SSE (`alt=sse`); a client that wanted Google's JSON array
gets the events re-framed as one, as from the Gemini API.

Calls carry an OAuth access token from google-auth's service-account flow (vertex_transport.py).
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from ..table import Provider, Target
from .base import Outbound, UpstreamCall
from .body import without_model
from .claude_betas import cloud_betas

ANTHROPIC_VERSION = "vertex-2023-10-16"


def endpoint(provider: Provider) -> str:
    if provider.base_url:
        return provider.base_url.rstrip("/")
    location = provider.location or "global"
    return "https://aiplatform.googleapis.com" if location == "global" else f"https://{location}-aiplatform.googleapis.com"


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    project, location = quote(provider.project or "", safe=""), quote(provider.location or "global", safe="")
    base = f"{endpoint(provider)}/v1/projects/{project}/locations/{location}/publishers"
    model = quote(target.upstream_model, safe="@")
    if target.protocol == "anthropic":
        url = f"{base}/anthropic/models/{model}:{'streamRawPredict' if out.stream else 'rawPredict'}"
        payload = {k: v for k, v in out.payload.items() if k != "model"}
        payload["anthropic_version"] = ANTHROPIC_VERSION
        headers = {"content-type": "application/json", "accept": "text/event-stream" if out.stream else "application/json"}
        betas = cloud_betas(out.client_headers)
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        return UpstreamCall("POST", url, headers, orjson.dumps(payload), out.stream)
    method = out.gemini_method or ("streamGenerateContent" if out.stream else "generateContent")
    url = f"{base}/google/models/{model}:{method}"
    if method == "streamGenerateContent":
        url += "?alt=sse"
    return UpstreamCall("POST", url, {"content-type": "application/json"}, without_model(out), out.stream)
