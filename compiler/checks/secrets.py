"""Keys and secrets: VK keys only as well-formed, unique sha256 digests; no literal secret anywhere."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from policy.source import Path

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, Related

SHA256 = re.compile(r"^[0-9a-f]{64}$")
HEX = re.compile(r"[0-9a-fA-F]*")
DIGEST_CUT_SHORT = re.compile(r"[0-9a-fA-F]*(\.\.\.|…)?")
"""A digest, whole or shortened for display, is no secret; anything else in key_sha256 may be the key itself."""
SECRET_SHAPES = (
    re.compile(r"sk-(proj-|ant-|svcacct-)?[A-Za-z0-9_-]{20,}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{36}"),
    re.compile(r"xox[abpr]-[A-Za-z0-9-]{10,}"),
)
ANY_SECRET_SHAPE = re.compile("|".join(f"(?:{shape.pattern})" for shape in SECRET_SHAPES))
"""One search for all of them: every string of 20 characters or more in a policy is searched."""
NAME = re.compile(r"^[a-z0-9][a-z0-9._:@-]*(/[a-z0-9][a-z0-9._:@-]*)?$")
TOKEN = re.compile(r"^[A-Za-z0-9_\-+/=.]{32,}$")
SECRET_FIELDS = {"key_sha256", "key_prefix"}
CREDENTIAL_FIELDS = ("api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "credentials")
"""Provider fields that hold a credential reference; check_providers reports a literal in them."""


def looks_like_secret(value: str) -> bool:
    """Known key shapes, or a long high-entropy token (hex digests, and lower-case names such as
    `anthropic-main/claude-haiku-4-5-20251001`, excepted)."""
    if ANY_SECRET_SHAPE.search(value):
        return True
    if NAME.match(value):
        return False
    if TOKEN.match(value) and not SHA256.match(value.lower()) and not value.startswith(("env:", "file:", "http")):
        return _entropy(value) > 4.0
    return False


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def check_keys(ctx: Context) -> Iterator[Diagnostic]:
    owners: dict[str, list[str]] = {}
    for vid, vk in ctx.policy.virtual_keys.items():
        where = ("virtual_keys", vid)
        digest = vk.key_sha256.strip()
        if not SHA256.match(digest):
            yield Diagnostic.of(
                codes.MALFORMED_SHA256,
                f"virtual key '{vid}' key_sha256 must be 64 lowercase hex characters, found {len(digest)} "
                "characters" + ("" if HEX.fullmatch(digest) else " that are not all hex"),
                ctx.index.value(*where, "key_sha256"),
                hint="run `policy keys new` and paste the key_sha256 it prints; never paste the key itself",
                secret=None if DIGEST_CUT_SHORT.fullmatch(digest) else digest,
            )
        else:
            owners.setdefault(digest, []).append(vid)
        if vk.key_prefix is not None and len(vk.key_prefix) != 12:
            yield Diagnostic.of(
                codes.MALFORMED_KEY_PREFIX,
                f"virtual key '{vid}' key_prefix must be the key's first 12 characters, found {len(vk.key_prefix)}",
                ctx.index.value(*where, "key_prefix"),
            )
        if vk.expires_at is not None and _aware(vk.expires_at) <= ctx.now:
            yield Diagnostic.of(
                codes.EXPIRED_KEY,
                f"virtual key '{vid}' expired at {vk.expires_at.isoformat()}; it stays in the table and is refused (401)",
                ctx.index.value(*where, "expires_at"),
                hint="remove it, or set `status: revoked` to keep the record explicit",
            )
    for vids in owners.values():
        if len(vids) < 2:
            continue
        first = ctx.index.value("virtual_keys", vids[0], "key_sha256")
        for vid in vids[1:]:
            yield Diagnostic.of(
                codes.DUPLICATE_KEY_HASH,
                f"virtual key '{vid}' has the same key_sha256 as '{vids[0]}'; one key would unlock both",
                ctx.index.value("virtual_keys", vid, "key_sha256"),
                hint="generate a new key with `policy keys new` for one of them",
                related=[Related(first, f"'{vids[0]}' key_sha256")] if first else [],
            )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


SECRET_MIN_LENGTH = 20
ADMIN_TOKEN: Path = ("gateway", "admin", "token")
"""Reported by check_admin_token, whatever it holds."""


def check_literal_secrets(ctx: Context) -> Iterator[Diagnostic]:
    """Any string value anywhere in the policy that looks like a credential."""
    found: list[tuple[Path, str]] = []
    _long_strings(ctx.raw, [], found)
    for path, text in found:
        if (_provider_credential(path) and path[1] in ctx.policy.providers) or path == ADMIN_TOKEN:
            continue
        if looks_like_secret(text):
            yield Diagnostic.of(
                codes.PLAINTEXT_SECRET,
                "this value looks like a credential; secrets never belong in the policy repository",
                ctx.index.value(*path),
                hint="reference it as env:NAME instead" + (", and rotate it: it is in git history now"
                                                          if ctx.in_git_repository else ""),
                secret=text,
            )


def _provider_credential(path: Path) -> bool:
    """`providers.<id>.<a credential field>` (`CREDENTIAL_FIELDS`) or an `api_keys` entry's reference:
    the providers check reports those of a provider that validated."""
    if len(path) < 3 or path[0] != "providers":
        return False
    return (len(path) == 3 and path[2] in CREDENTIAL_FIELDS) or (
        path[2] == "api_keys" and (len(path) == 4 or path[4:] == ("api_key",)))


def _long_strings(value: Any, path: list[str | int], out: list[tuple[Path, str]]) -> None:
    """Every string of at least `SECRET_MIN_LENGTH` characters below `value`, with its path, in
    document order, but those of `SECRET_FIELDS` (digests and prefixes of keys, checked apart). A
    path is made only for such a string: most values of a policy are shorter."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        if isinstance(child, str):
            if len(child) >= SECRET_MIN_LENGTH and key not in SECRET_FIELDS:
                out.append(((*path, key), child))
        elif isinstance(child, (dict, list)):
            path.append(key)
            _long_strings(child, path, out)
            path.pop()
