"""The admin token: read from its reference (`env:NAME` or `file:PATH`, as provider credentials
are), presented as `Authorization: Bearer <token>` or in the `gatepost_admin` cookie, compared in
constant time.

Both sides are hashed before the comparison, so `hmac.compare_digest` compares two strings of one
length and the time it takes says nothing about the token's length either.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from ..credentials import resolve_reference
from ..exceptions import CredentialError

COOKIE = "gatepost_admin"
COOKIE_PATH = "/admin"
REFERENCE_PREFIXES = ("env:", "file:")


class AdminTokenError(Exception):
    """The admin token's reference is missing, literal, or gives nothing."""


def resolve_admin_token(reference: str | None) -> str:
    """The token `gateway.admin.token` refers to; never the reference's text itself."""
    if reference is None:
        raise AdminTokenError("--admin-port needs an admin token: set gateway.admin.token to env:NAME or file:PATH")
    if not reference.startswith(REFERENCE_PREFIXES):
        raise AdminTokenError("gateway.admin.token must be a reference (env:NAME or file:PATH), not the token itself")
    try:
        token = resolve_reference(reference)
    except CredentialError as exc:
        raise AdminTokenError(f"gateway.admin.token: {exc}") from exc
    if not token.strip():
        raise AdminTokenError(f"gateway.admin.token: {reference} is empty")
    return token.strip()


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


class AdminToken:
    """Holds only the token's digest."""

    def __init__(self, token: str) -> None:
        self._digest = _digest(token)

    def accepts(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(_digest(presented), self._digest)

    def accepts_request(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Whether an ASGI request's headers carry the token, as a bearer token or the cookie."""
        for name, value in headers:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and self.accepts(credentials.strip()):
                    return True
            elif name == b"cookie" and self.accepts(cookie_value(value.decode("latin-1"), COOKIE)):
                return True
        return False


def cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value.strip().strip('"')
    return None


def cookie_header(token: str, secure: bool = False) -> str:
    """The `Set-Cookie` value a login answer carries: HttpOnly, SameSite=Strict, for /admin only;
    `secure` when the admin listener is behind TLS."""
    return f"{COOKIE}={token}; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def clear_cookie_header() -> str:
    return f"{COOKIE}=; Path={COOKIE_PATH}; HttpOnly; SameSite=Strict; Max-Age=0"
