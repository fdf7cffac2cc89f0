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
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    500: "server_error",
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
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    431: "request_too_large",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
GOOGLE_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    431: "INVALID_ARGUMENT",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
    529: "UNAVAILABLE",
}
"""google.rpc.Code names by HTTP status: code.proto's own mapping (400, 401, 403, 404, 409, 429,
499, 500, 501, 503, 504), and for the statuses it has no code for, the code of the same meaning:
a budget (402) is an exhausted quota, a method the path does not take (405) is not implemented
there, a request too large (413, 431) or unprocessable (422) is an invalid argument, a provider
that failed (502) or is overloaded (529) is unavailable, a request timeout (408) a deadline."""


def google_status(status: int) -> str:
    """The google.rpc.Code name of an HTTP status; a status the table lacks, by its class."""
    return GOOGLE_STATUSES.get(status) or ("INVALID_ARGUMENT" if 400 <= status < 500 else "INTERNAL")


def openai_error(status: int, code: str, message: str, param: str | None = None, meta: Any = None) -> bytes:
    error: dict[str, Any] = {
        "message": message,
        "type": OPENAI_TYPES.get(status) or ("invalid_request_error" if status < 500 else "server_error"),
        "code": code,
        "param": param,
    }
    if meta is not None:
        error["meta"] = meta
    return orjson.dumps({"error": error})


def anthropic_error(status: int, code: str, message: str, param: str | None = None, meta: Any = None) -> bytes:
    error: dict[str, Any] = {"type": ANTHROPIC_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error"), "message": message, "code": code}
    if meta is not None:
        error["meta"] = meta
    return orjson.dumps({"type": "error", "error": error})


def google_error(status: int, code: str, message: str, param: str | None = None, meta: Any = None) -> bytes:
    error: dict[str, Any] = {"code": status, "message": message, "status": google_status(status)}
    details: dict[str, Any] = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code, "domain": "gatepost"}
    if meta is not None:
        details["metadata"] = {k: str(v) for k, v in meta.items()} if isinstance(meta, dict) else {"meta": str(meta)}
    error["details"] = [details]
    if isinstance(meta, dict) and isinstance(retry := meta.get("retry_after_s"), int):
        error["details"].append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry}s"})
    return orjson.dumps({"error": error})


def error_headers(status: int) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    if status in NO_RETRY_STATUSES:
        headers.append((b"x-should-retry", b"false"))
    return headers
