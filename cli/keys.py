"""Virtual key material: generation and the digest the policy stores."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "gp-"
PREFIX_LENGTH = 12


def new_key() -> str:
    """A 256-bit random key, URL-safe, recognisable by its `gp-` prefix."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]
