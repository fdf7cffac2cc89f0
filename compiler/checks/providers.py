"""Providers: a known type, a credential reference, and what each type needs to be reached."""

from __future__ import annotations

import re
from collections.abc import Iterator

from policy.models import PROVIDER_TYPES

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, suggest
from .secrets import looks_like_secret

NEEDS_BASE_URL = {
    "azure_openai": "https://<resource>.openai.azure.com",
    "openai_compatible": "the server's OpenAI-compatible root, e.g. http://127.0.0.1:8000/v1",
}
KEYLESS = frozenset({"mock", "openai_compatible"})
"""Types that may have no api_key: the built-in mock, and a local vLLM or Ollama that takes none."""
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
        if provider.api_key is None:
            if provider.type in PROVIDER_TYPES and provider.type not in KEYLESS:
                yield Diagnostic.of(
                    codes.MISSING_CREDENTIAL,
                    f"provider '{pid}' has no api_key",
                    ctx.index.key(*where),
                    hint="add `api_key: env:NAME` naming the environment variable that holds the key",
                )
        elif not provider.api_key.startswith(CREDENTIAL_PREFIXES) or provider.api_key in CREDENTIAL_PREFIXES:
            literal = looks_like_secret(provider.api_key)
            shell = SHELL_VARIABLE.fullmatch(provider.api_key.strip())
            yield Diagnostic.of(
                codes.PLAINTEXT_SECRET if literal else codes.INVALID_SECRET_REF,
                f"provider '{pid}' api_key looks like a literal key; secrets never belong in the policy"
                if literal
                else f"provider '{pid}' api_key must be an env:NAME or file:PATH reference",
                ctx.index.value(*where, "api_key"),
                hint=_reference_hint(shell)
                + ("; rotate the key, it is in git history now" if literal and ctx.in_git_repository else ""),
                secret=None if _names_a_variable(provider.api_key, shell) else provider.api_key,
            )
        if provider.type in NEEDS_BASE_URL and not provider.base_url:
            yield Diagnostic.of(
                codes.BASE_URL_MISSING,
                f"provider '{pid}' of type {provider.type} needs a base_url ({NEEDS_BASE_URL[provider.type]})",
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


def _names_a_variable(value: str, shell: re.Match[str] | None) -> bool:
    """`${OPENAI_API_KEY}`, `OPENAI_API_KEY` or a bare `env:` name where the key is kept, not the key."""
    return shell is not None or value in CREDENTIAL_PREFIXES or VARIABLE_NAME.fullmatch(value.strip()) is not None


def _reference_hint(shell: re.Match[str] | None) -> str:
    if shell:
        return f"write `api_key: env:{shell.group(1)}`; the policy does not expand shell variables"
    return "use `api_key: env:NAME` and set NAME where the proxy runs"
