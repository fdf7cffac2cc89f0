"""Providers: a known type, a credential reference, and what each type needs to be reached."""

from __future__ import annotations

import re
from collections.abc import Iterator

from policy.models import PROVIDER_TYPES, Provider, credential_entries
from policy.source import Span

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, Related, suggest
from .secrets import CREDENTIAL_FIELDS, looks_like_secret

NEEDS_BASE_URL = {
    "azure_openai": "https://<resource>.openai.azure.com",
    "openai_compatible": "the server's OpenAI-compatible root, e.g. http://127.0.0.1:8000/v1",
}
KEYLESS = frozenset({"mock", "openai_compatible"})
"""Types that may have no api_key: the built-in mock, and a local vLLM or Ollama that takes none."""
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
MAX_CREDENTIAL_ID = 64
EVERY_ENTRY = "set it on the provider, or on every api_keys entry (each region's own {name})"
CREDENTIAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.#@:-]{0,%d}" % (MAX_CREDENTIAL_ID - 1))


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
            for field_name, reference in _cloud_references(provider):
                yield from _reference(ctx, pid, field_name, reference, ("providers", pid, field_name))
        else:
            yield from _credentials(ctx, pid, provider)
        if provider.type in NEEDS_BASE_URL and not provider.base_url and not _every_entry_has(provider, "base_url"):
            yield Diagnostic.of(
                codes.BASE_URL_MISSING,
                f"provider '{pid}' of type {provider.type} needs a base_url ({NEEDS_BASE_URL[provider.type]})",
                ctx.index.key(*where),
                hint=EVERY_ENTRY.format(name="base_url") if provider.api_keys else None,
            )
        if provider.base_url and not provider.base_url.startswith(("http://", "https://")):
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"provider '{pid}' base_url must start with http:// or https://",
                ctx.index.value(*where, "base_url"),
            )
        if provider.type == "azure_openai" and not provider.api_version and not _every_entry_has(provider, "api_version"):
            yield Diagnostic.of(
                codes.AZURE_API_VERSION_MISSING,
                f"azure_openai provider '{pid}' needs api_version (e.g. \"2024-10-21\")",
                ctx.index.key(*where),
                hint=EVERY_ENTRY.format(name="api_version") if provider.api_keys else None,
            )
        if provider.timeouts is not None and provider.timeouts.total_s < provider.timeouts.read_s:
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"provider '{pid}' timeouts.total_s ({provider.timeouts.total_s}) is shorter than "
                f"read_s ({provider.timeouts.read_s})",
                ctx.index.value(*where, "timeouts", "total_s"),
            )


def _credentials(ctx: Context, pid: str, provider: Provider) -> Iterator[Diagnostic]:
    """`api_key`, or `api_keys`: exactly one of them (but for the mock), each a reference."""
    where = ("providers", pid)
    if provider.api_keys is None:
        if provider.api_key is None:
            if provider.type in PROVIDER_TYPES and provider.type not in KEYLESS:
                yield Diagnostic.of(
                    codes.MISSING_CREDENTIAL,
                    f"provider '{pid}' has no api_key",
                    ctx.index.key(*where),
                    hint="add `api_key: env:NAME` naming the environment variable that holds the key",
                )
        else:
            yield from _reference(ctx, pid, "api_key", provider.api_key, (*where, "api_key"))
        return
    if provider.api_key is not None:
        yield Diagnostic.of(
            codes.CREDENTIAL_TWICE,
            f"provider '{pid}' sets both api_key and api_keys; give one of them",
            ctx.index.key(*where, "api_keys"),
            hint="move the api_key reference into the api_keys list",
            related=_related(ctx.index.value(*where, "api_key"), "its api_key"),
        )
    if not provider.api_keys:
        yield Diagnostic.of(
            codes.NO_CREDENTIALS,
            f"provider '{pid}' api_keys is empty",
            ctx.index.value(*where, "api_keys"),
            hint="list at least one env:NAME or file:PATH reference, or use `api_key:`",
        )
        return
    first_at: dict[str, int] = {}
    for position, (given, entry) in enumerate(zip(provider.api_keys, credential_entries(pid, provider), strict=True)):
        at = (*where, "api_keys", position)
        named = None if isinstance(given, str) else given.id
        yield from _reference(
            ctx, pid, f"api_keys entry {position + 1}", entry.api_key, at if isinstance(given, str) else (*at, "api_key")
        )
        assert entry.id is not None
        if named is not None and not CREDENTIAL_ID.fullmatch(named):
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"provider '{pid}' credential id '{named}' must start with a letter or digit, use only letters, "
                f"digits and . _ - # @ : and be at most {MAX_CREDENTIAL_ID} characters",
                ctx.index.value(*at, "id"),
                hint="it names the credential in logs, headers and metrics; never put the key itself there",
            )
        if entry.id in first_at:
            earlier = first_at[entry.id]
            yield Diagnostic.of(
                codes.DUPLICATE_CREDENTIAL_ID,
                f"provider '{pid}' has two credentials with the id '{entry.id}' (entries {earlier + 1} and "
                f"{position + 1}); logs and metrics could not tell them apart",
                ctx.index.value(*at, "id") if named is not None else ctx.index.value(*at),
                hint="give each entry its own `id`",
                related=_related(ctx.index.value(*where, "api_keys", earlier), f"entry {earlier + 1}"),
            )
        else:
            first_at[entry.id] = position
        if entry.base_url and not entry.base_url.startswith(("http://", "https://")):
            yield Diagnostic.of(
                codes.INVALID_VALUE,
                f"provider '{pid}' credential '{entry.id}' base_url must start with http:// or https://",
                ctx.index.value(*at, "base_url"),
            )


def _reference(ctx: Context, pid: str, name: str, value: str, at: tuple[str | int, ...]) -> Iterator[Diagnostic]:
    if value.startswith(CREDENTIAL_PREFIXES) and value not in CREDENTIAL_PREFIXES:
        return
    literal = looks_like_secret(value)
    shell = SHELL_VARIABLE.fullmatch(value.strip())
    yield Diagnostic.of(
        codes.PLAINTEXT_SECRET if literal else codes.INVALID_SECRET_REF,
        f"provider '{pid}' {name} looks like a literal key; secrets never belong in the policy"
        if literal
        else f"provider '{pid}' {name} must be an env:NAME or file:PATH reference",
        ctx.index.value(*at),
        hint=_reference_hint(shell, name if name in CREDENTIAL_FIELDS else "api_key")
        + ("; rotate the key, it is in git history now" if literal and ctx.in_git_repository else ""),
        secret=None if _names_a_variable(value, shell) else value,
    )


def _related(span: Span | None, message: str) -> list[Related]:
    return [Related(span, message)] if span is not None else []


def _every_entry_has(provider: Provider, name: str) -> bool:
    """Each `api_keys` entry gives `name` itself (an Azure provider's regions each with their own endpoint)."""
    entries = provider.api_keys or ()
    return bool(entries) and all(not isinstance(e, str) and getattr(e, name) for e in entries)


def _cloud_references(provider: Provider) -> Iterator[tuple[str, str]]:
    """A bedrock or vertex provider's credential references (its api_key is refused on its own)."""
    for field_name in CREDENTIAL_FIELDS:
        value = getattr(provider, field_name)
        if field_name != "api_key" and value is not None:
            yield field_name, value


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
    if provider.api_keys is not None:
        yield Diagnostic.of(
            codes.INVALID_VALUE,
            f"{provider.type} provider '{pid}' does not use api_keys; it signs with {' and '.join(credentials)}",
            ctx.index.key(*where, "api_keys"),
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
