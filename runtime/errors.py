"""Error bodies in the shape each surface's SDK parses, and the headers that stop pointless retries."""

from __future__ import annotations

from typing import Any

import orjson

NO_RETRY_STATUSES = frozenset({401, 402, 403})

OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "budget_exceeded",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    431: "invalid_request_error",
    429: "rate_limit_error",
    502: "provider_error",
    503: "service_unavailable",
    504: "timeout_error",
}
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    431: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    431: "INVALID_ARGUMENT",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def openai_error(status: int, code: str, message: str, param: str | None = None, meta: Any = None) -> bytes:
    error: dict[str, Any] = {
        "message": message,
        "type": OPENAI_TYPES.get(status, "api_error"),
        "code": code,
        "param": param,
    }
    if meta is not None:
        error["meta"] = meta
    return orjson.dumps({"error": error})


def anthropic_error(status: int, code: str, message: str, param: str | None = None, meta: Any = None) -> bytes:
    error: dict[str, Any] = {"type": ANTHROPIC_TYPES.get(status, "api_error"), "message": message, "code": code}
    if meta is not None:
        error["meta"] = meta
    return orjson.dumps({"type": "error", "error": error})


def google_error(status: int, code: str, message: str, param: str | None = None, meta: Any = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": GOOGLE_STATUSES.get(status, "INTERNAL")}
    details: dict[str, Any] = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code, "domain": "gatepost"}
    if meta is not None:
        details["metadata"] = {k: str(v) for k, v in meta.items()} if isinstance(meta, dict) else {"meta": str(meta)}
    error["details"] = [details]
    return orjson.dumps({"error": error})


def error_headers(status: int) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    if status in NO_RETRY_STATUSES:
        headers.append((b"x-should-retry", b"false"))
    return headers
