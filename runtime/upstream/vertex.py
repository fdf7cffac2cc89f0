"""Google Vertex AI: Claude through `rawPredict`/`streamRawPredict` (the Messages body without
`model`, with Vertex's `anthropic_version`) and Gemini through `generateContent`/
`streamGenerateContent`, both under `/v1/projects/{project}/locations/{location}/publishers/...`.

A Gemini stream is always asked for as SSE (`alt=sse`); a client that wanted Google's JSON array
gets the events re-framed as one, as from the Gemini API.

Calls carry an OAuth access token from google-auth's service-account flow (tokens.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import quote

import orjson

from ..table import Provider, Target
from .base import BufferedResponse, Outbound, UpstreamCall, UpstreamResponse
from .body import without_model
from .claude_betas import cloud_betas
from .http import HttpTransport
from .tokens import AccessTokens, TokenRefused

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


class VertexTransport:
    """Adds the service account's access token to each call; a token endpoint that refuses the
    key is answered as a 401 of the provider's (so the client gets `provider_auth_error`), one
    that cannot be reached or fails is a provider failure like any other."""

    def __init__(self, provider: Provider, credentials: Mapping[str, str]) -> None:
        self._http = HttpTransport(provider)
        account = credentials.get("service_account")
        self._tokens = AccessTokens(orjson.loads(account), provider.timeouts) if account else None

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        if self._tokens is not None:
            try:
                token = await self._tokens.token()
            except TokenRefused:
                return BufferedResponse(401, [(b"content-type", b"application/json")], [b"{}"])
            call = replace(call, headers={**call.headers, "authorization": f"Bearer {token}"})
        return await self._http.send(call)

    @property
    def in_flight(self) -> int:
        return self._http.in_flight

    async def aclose(self) -> None:
        await self._http.aclose()
