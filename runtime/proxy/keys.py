"""The key a client presents, read where each client sends it: `Authorization: Bearer` (OpenAI
SDKs, Codex, the anthropic SDK), `x-api-key` (Claude Code), `x-goog-api-key` or `?key=`
(gemini-cli). The gateway looks keys up by their sha256 and never keeps or logs the key itself."""

from __future__ import annotations

import hashlib
from urllib.parse import unquote_to_bytes

from .asgi import Scope


def presented_key(scope: Scope) -> bytes | None:
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
        elif name in (b"x-api-key", b"x-goog-api-key") and value.strip():
            return value.strip()
    query = scope.get("query_string", b"")
    if b"key=" in query:
        for pair in query.split(b"&"):
            name, _, value = pair.partition(b"=")
            if name == b"key" and value:
                return unquote_to_bytes(value)
    return None


def key_hash(scope: Scope) -> str | None:
    token = presented_key(scope)
    return hashlib.sha256(token).hexdigest() if token is not None else None


def key_prefix(scope: Scope) -> str | None:
    """The first 12 characters of the presented key, which is how logs name a key no entry matched."""
    token = presented_key(scope)
    return token[:12].decode("utf-8", "replace") if token is not None else None
