"""Vertex AI's transport: each call carries the service account's access token (tokens.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import orjson

from ..table import Provider
from .base import BufferedResponse, UpstreamCall, UpstreamResponse
from .http import HttpTransport
from .tokens import AccessTokens, TokenRefused


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
