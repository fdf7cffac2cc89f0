"""Bedrock's answer stream, AWS event-stream framing parsed by botocore, relayed as the Messages
SSE stream it carries.

Each `chunk` event's payload is `{"bytes": "<base64>"}`, the base64 of one Messages stream event
(`message_start`, `content_block_delta`, ... `message_stop`); it becomes `event: <type>` and
`data: <json>`. An exception frame (`throttlingException`, `modelStreamErrorException`, ...)
becomes Anthropic's in-band `error` event, as a stream that fails mid-way does on Anthropic's
own API.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator

import orjson
from botocore.eventstream import EventStreamBuffer, EventStreamMessage, ParserError

from ..exceptions import NotItsProtocol
from .base import ReshapedResponse, UpstreamResponse

EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"
ERROR_TYPES = {
    "throttlingException": "rate_limit_error",
    "serviceUnavailableException": "overloaded_error",
    "validationException": "invalid_request_error",
    "modelTimeoutException": "api_error",
    "modelStreamErrorException": "api_error",
    "internalServerException": "api_error",
}


class EventStreamAnswer(ReshapedResponse):
    """An `UpstreamResponse` whose bytes are the SSE events inside the event-stream frames."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(response, b"text/event-stream")

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        frames = EventStreamBuffer()
        async for chunk in self._response.aiter_bytes():
            frames.add_data(chunk)
            try:
                events = b"".join(sse_event(message) for message in frames)
            except ParserError as exc:
                raise NotItsProtocol(f"not an AWS event stream ({type(exc).__name__})") from exc
            if events:
                yield events


def sse_event(message: EventStreamMessage) -> bytes:
    """One frame as the SSE event it carries; frames of other kinds (none today) carry nothing."""
    headers = message.headers
    kind = headers.get(":message-type")
    if kind == "event" and headers.get(":event-type") == "chunk":
        try:
            event = base64.b64decode(orjson.loads(message.payload)["bytes"], validate=True)
            name = orjson.loads(event)["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError, binascii.Error) as exc:
            raise NotItsProtocol("a Bedrock chunk that is not a Messages stream event") from exc
        return b"event: " + str(name).encode() + b"\ndata: " + event + b"\n\n"
    if kind in ("exception", "error"):
        exception = headers.get(":exception-type") or headers.get(":error-code") or "internalServerException"
        try:
            message_text = str(orjson.loads(message.payload).get("message", exception))
        except (orjson.JSONDecodeError, AttributeError):
            message_text = str(exception)
        error = {"type": "error", "error": {"type": ERROR_TYPES.get(str(exception), "api_error"),
                                            "message": f"Bedrock {exception}: {message_text}"}}
        return b"event: error\ndata: " + orjson.dumps(error) + b"\n\n"
    return b""
