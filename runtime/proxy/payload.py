"""A request body read and parsed as the API surfaces take it: one JSON object within the gateway's
size limit, or the 400 that says what is wrong with it."""

from __future__ import annotations

from typing import Any

import orjson

from ..decision import Deny
from ..exceptions import BodyTooLarge
from ..table import KeyEntry
from .asgi import Receive, Scope, read_body


async def read_payload(scope: Scope, receive: Receive, limit: int, key: KeyEntry) -> tuple[bytes, dict[str, Any]] | Deny:
    """(the body's bytes, its JSON object), or a 400: larger than `limit`, not JSON, not an object."""
    try:
        raw = await read_body(scope, receive, limit)
    except BodyTooLarge:
        return Deny(400, "request_too_large", f"request body is larger than the gateway's limit of {limit} bytes", key)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Deny(400, "invalid_json", f"request body is not valid JSON: {exc}", key)
    if not isinstance(payload, dict):
        return Deny(400, "invalid_request_error", "request body must be a JSON object", key)
    return raw, payload
