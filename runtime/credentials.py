"""Provider credentials from their policy references (`env:NAME`, `file:PATH`), never logged."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .exceptions import CredentialError
from .table import Provider


def resolve_reference(reference: str, environ: Mapping[str, str] = os.environ) -> str:
    kind, _, name = reference.partition(":")
    if kind == "env":
        value = environ.get(name)
        if not value:
            raise CredentialError(f"environment variable {name} is not set")
        return value
    if kind == "file":
        try:
            value = Path(name).expanduser().read_text().strip()
        except OSError as exc:
            raise CredentialError(f"cannot read {name}: {exc.strerror or exc}") from exc
        if not value:
            raise CredentialError(f"{name} is empty")
        return value
    raise CredentialError(f"unsupported credential reference kind '{kind}'")


def resolve_credentials(
    providers: Mapping[str, Provider], environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, str], dict[str, str]]:
    """(provider -> secret, provider -> problem) for every provider that has a reference."""
    found: dict[str, str] = {}
    problems: dict[str, str] = {}
    for pid, provider in providers.items():
        if provider.api_key is None:
            continue
        try:
            found[pid] = resolve_reference(provider.api_key, environ)
        except CredentialError as exc:
            problems[pid] = f"{provider.api_key}: {exc}"
    return found, problems
