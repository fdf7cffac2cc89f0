"""Provider credentials from their policy references (`env:NAME`, `file:PATH`), never logged."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .exceptions import CredentialError
from .table import Credential, Provider


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


CredentialKey = tuple[str, str]
"""(provider, credential id)."""


def resolve_credentials(
    providers: Mapping[str, Provider], environ: Mapping[str, str] = os.environ
) -> tuple[dict[CredentialKey, str], dict[CredentialKey, str]]:
    """(credential -> secret, credential -> problem) for every credential that has a reference."""
    found: dict[CredentialKey, str] = {}
    problems: dict[CredentialKey, str] = {}
    for provider in providers.values():
        for credential in provider.credentials:
            if credential.reference is None:
                continue
            try:
                found[credential.key] = resolve_reference(credential.reference, environ)
            except CredentialError as exc:
                problems[credential.key] = f"{credential.reference}: {exc}"
    return found, problems


def usable_credentials(provider: Provider, secrets: Mapping[CredentialKey, str]) -> tuple[Credential, ...]:
    """The provider's credentials a request can carry: those needing none, or whose secret was read."""
    return tuple(c for c in provider.credentials if c.reference is None or c.key in secrets)


def missing_reports(providers: Mapping[str, Provider], problems: Mapping[CredentialKey, str]) -> list[dict[str, str]]:
    """The fields of each `credential_missing` event: the provider, the credential's id where the
    provider has several, and the problem (the reference and why it gave nothing, never a value)."""
    reports: list[dict[str, str]] = []
    for (pid, cid), problem in sorted(problems.items()):
        provider = providers.get(pid)
        named = {"credential": cid} if provider is not None and provider.pooled else {}
        reports.append({"provider": pid, **named, "problem": problem})
    return reports


def changed_providers(old: Mapping[CredentialKey, str], new: Mapping[CredentialKey, str]) -> list[str]:
    """The providers any of whose credentials reads differently now."""
    return sorted({pid for pid, _ in old.keys() ^ new.keys()} | {key[0] for key in old.keys() & new.keys()
                                                                  if old[key] != new[key]})
