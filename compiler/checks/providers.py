"""Providers: a known type, a credential reference, and what each type needs to be reached."""

from __future__ import annotations

import re
from collections.abc import Iterator

from policy.models import PROVIDER_TYPES, Provider

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, suggest
from .secrets import CREDENTIAL_FIELDS, looks_like_secret

NEEDS_BASE_URL = {"azure_openai"}
CLOUD_SETTINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "bedrock": (("region",), ("aws_access_key_id", "aws_secret_access_key")),
    "vertex": (("project", "location"), ("credentials",)),
}
"""Per cloud type: the settings that say where it is, and the credential references it signs with."""
CLOUD_HINTS = {
    "region": "add `region: us-east-1` (the AWS region whose Bedrock serves the models)",
    "project": "add `project: <Google Cloud project id>`",
    "location": "add `location: us-east5` (or `global`), where Vertex AI serves the models",
}
CREDENTIAL_PREFIXES = ("env:", "file:")
SHELL_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")
VARIABLE_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")


def check_providers(ctx: Context) -> Iterator[Diagnostic]:
    for pid, provider in ctx.policy.providers.items():
        where = ("providers", pid)
        if provider.type not in PROVIDER_TYPES:
            yield Diagnostic.of(
                codes.UNKNOWN_PROVIDER_TYPE,
                f"provider '{pid}' has unknown type '{provider.type}'",
                ctx.index.value(*where, "type"),
                hint=suggest(provider.type, PROVIDER_TYPES) or f"types are: {', '.join(PROVIDER_TYPES)}",
            )
        if provider.type in CLOUD_SETTINGS:
            yield from _cloud_settings(ctx, pid, provider)
        elif provider.api_key is None:
            if provider.type in PROVIDER_TYPES and provider.type != "mock":
                yield Diagnostic.of(
                    codes.MISSING_CREDENTIAL,
                    f"provider '{pid}' has no api_key",
                    ctx.index.key(*where),
                    hint="add `api_key: env:NAME` naming the environment variable that holds the key",
                )
        for field_name, reference in _references(provider):
            yield from _reference(ctx, pid, field_name, reference)
        if provider.type in NEEDS_BASE_URL and not provider.base_url:
            yield Diagnostic.of(
                codes.BASE_URL_MISSING,
                f"provider '{pid}' of type {provider.type} needs a base_url (https://<resource>.openai.azure.com)",
                ctx.index.key(*where),
            )
        if provider.base_url and not provider.base_url.startswith(("http://", "https://")):
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"provider '{pid}' base_url must start with http:// or https://",
                ctx.index.value(*where, "base_url"),
            )
        if provider.type == "azure_openai" and not provider.api_version:
            yield Diagnostic.of(
                codes.AZURE_API_VERSION_MISSING,
                f"azure_openai provider '{pid}' needs api_version (e.g. \"2024-10-21\")",
                ctx.index.key(*where),
            )
        if provider.timeouts is not None and provider.timeouts.total_s < provider.timeouts.read_s:
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"provider '{pid}' timeouts.total_s ({provider.timeouts.total_s}) is shorter than "
                f"read_s ({provider.timeouts.read_s})",
                ctx.index.value(*where, "timeouts", "total_s"),
            )


def _references(provider: Provider) -> Iterator[tuple[str, str]]:
    for field_name in CREDENTIAL_FIELDS:
        value = getattr(provider, field_name)
        if value is not None:
            yield field_name, value


def _reference(ctx: Context, pid: str, field_name: str, reference: str) -> Iterator[Diagnostic]:
    if reference.startswith(CREDENTIAL_PREFIXES) and reference not in CREDENTIAL_PREFIXES:
        return
    literal = looks_like_secret(reference)
    shell = SHELL_VARIABLE.fullmatch(reference.strip())
    yield Diagnostic.of(
        codes.PLAINTEXT_SECRET if literal else codes.INVALID_SECRET_REF,
        f"provider '{pid}' {field_name} looks like a literal key; secrets never belong in the policy"
        if literal
        else f"provider '{pid}' {field_name} must be an env:NAME or file:PATH reference",
        ctx.index.value("providers", pid, field_name),
        hint=_reference_hint(shell, field_name)
        + ("; rotate the key, it is in git history now" if literal and ctx.in_git_repository else ""),
        secret=None if _names_a_variable(reference, shell) else reference,
    )


def _cloud_settings(ctx: Context, pid: str, provider: Provider) -> Iterator[Diagnostic]:
    """What a bedrock or vertex provider cannot be reached or signed for without."""
    settings, credentials = CLOUD_SETTINGS[provider.type]
    where = ("providers", pid)
    for name in settings:
        if not getattr(provider, name):
            yield Diagnostic.of(
                codes.CLOUD_SETTING_MISSING,
                f"{provider.type} provider '{pid}' needs {name}",
                ctx.index.key(*where),
                hint=CLOUD_HINTS[name],
            )
    for name in credentials:
        if getattr(provider, name) is None:
            yield Diagnostic.of(
                codes.MISSING_CREDENTIAL,
                f"{provider.type} provider '{pid}' has no {name}",
                ctx.index.key(*where),
                hint=f"add `{name}: env:NAME` (or file:PATH) naming where the proxy reads it",
            )
    if provider.api_key is not None:
        yield Diagnostic.of(
            codes.INVALID_VALUE,
            f"{provider.type} provider '{pid}' does not use api_key; it signs with {' and '.join(credentials)}",
            ctx.index.key(*where, "api_key"),
        )


def _names_a_variable(value: str, shell: re.Match[str] | None) -> bool:
    """`${OPENAI_API_KEY}`, `OPENAI_API_KEY` or a bare `env:` name where the key is kept, not the key."""
    return shell is not None or value in CREDENTIAL_PREFIXES or VARIABLE_NAME.fullmatch(value.strip()) is not None


def _reference_hint(shell: re.Match[str] | None, field_name: str = "api_key") -> str:
    if shell:
        return f"write `{field_name}: env:{shell.group(1)}`; the policy does not expand shell variables"
    return f"use `{field_name}: env:NAME` and set NAME where the proxy runs"
