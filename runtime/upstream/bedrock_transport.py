"""Bedrock's transport: each call signed with SigV4 (bedrock_sigv4.py, botocore's signature) from the
provider's AWS keys; a stream's AWS event-stream frames relayed as the Messages SSE stream they
carry (eventstream.py), and error answers in Anthropic's error shape, so the rest of the gateway
sees an Anthropic answer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from ..table import Provider
from .base import ReshapedResponse, UpstreamCall, UpstreamResponse
from .bedrock_sigv4 import SigV4Signer
from .eventstream import EVENT_STREAM_TYPE, EventStreamAnswer
from .http import HttpTransport

MAX_ERROR_BYTES = 64 * 1024
"""A larger error answer is relayed as it came rather than held to be reshaped."""
ERROR_TYPES = {
    "ValidationException": "invalid_request_error",
    "AccessDeniedException": "permission_error",
    "ResourceNotFoundException": "not_found_error",
    "ThrottlingException": "rate_limit_error",
    "ServiceQuotaExceededException": "rate_limit_error",
    "ModelNotReadyException": "overloaded_error",
    "ServiceUnavailableException": "overloaded_error",
}
"""Bedrock's error kinds as Anthropic's error types; the rest are `api_error` (5xx) or `invalid_request_error`."""


class BedrockTransport:
    """Signs each call (a retry is signed again, with a fresh date) and relays a stream's
    event-stream frames as Messages SSE; without keys (a reference that did not resolve) the
    provider is skipped before it is ever called."""

    def __init__(self, provider: Provider, keys: Mapping[str, str]) -> None:
        self._http = HttpTransport(provider)
        self._signer = SigV4Signer(keys, provider.region or "") if "aws_secret_access_key" in keys else None

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        if self._signer is not None:
            call = self._signer.sign(call)
        response = await self._http.send(call)
        if call.stream and response.status == 200 and _content_type(response) == EVENT_STREAM_TYPE.encode():
            return EventStreamAnswer(response)
        if response.status >= 400:
            return BedrockError(response)
        return response

    @property
    def in_flight(self) -> int:
        return self._http.in_flight

    async def aclose(self) -> None:
        await self._http.aclose()


class BedrockError(ReshapedResponse):
    """A Bedrock error answer (`{"message"}`, its kind in `x-amzn-ErrorType`) in Anthropic's error
    shape, so the clients of the Messages surface, and the translation to OpenAI's, read it as
    they read Anthropic's own (a ValidationException is an `invalid_request_error`)."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(response, b"application/json")
        kind = dict(response.headers).get(b"x-amzn-errortype", b"").split(b":")[0].decode("latin-1")
        self._kind = kind or "UnknownError"

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        body = b""
        chunks = self._response.aiter_bytes()
        async for chunk in chunks:
            body += chunk
            if len(body) > MAX_ERROR_BYTES:
                yield body
                async for rest in chunks:
                    yield rest
                return
        try:
            message = str(orjson.loads(body).get("message") or self._kind)
        except (orjson.JSONDecodeError, AttributeError):
            message = body.decode(errors="replace") or self._kind
        error_type = ERROR_TYPES.get(self._kind, "api_error" if self.status >= 500 else "invalid_request_error")
        yield orjson.dumps({"type": "error", "error": {"type": error_type, "message": f"Bedrock {self._kind}: {message}"}})


def _content_type(response: UpstreamResponse) -> bytes:
    for name, value in response.headers:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower()
    return b""
