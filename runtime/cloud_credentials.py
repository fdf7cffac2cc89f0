"""The credentials of bedrock and vertex providers, from their policy references, never logged.

A bedrock provider signs with two or three AWS secrets, a vertex provider with a service-account
key file; each is an `env:` or `file:` reference read like any provider's `api_key`, held by name
(`aws_access_key_id`, ..., `service_account`). A provider any of whose references does not
resolve is left out whole, with the problem naming the reference, as a missing `api_key` is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import orjson

from .credentials import resolve_reference
from .exceptions import CredentialError
from .table import Provider

REQUIRED_FIELDS = ("client_email", "private_key", "token_uri")
"""What google-auth needs of a service-account key file to sign its token requests."""


def resolve_cloud_credentials(
    providers: Mapping[str, Provider], environ: Mapping[str, str] = os.environ
) -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """(provider -> name -> secret, provider -> problem) for every provider with named references."""
    found: dict[str, dict[str, str]] = {}
    problems: dict[str, str] = {}
    for pid, provider in providers.items():
        if not provider.cloud_credentials:
            continue
        secrets: dict[str, str] = {}
        for name, reference in sorted(provider.cloud_credentials.items()):
            try:
                secrets[name] = resolve_reference(reference, environ)
            except CredentialError as exc:
                problems[pid] = f"{name} {reference}: {exc}"
                break
            if name == "service_account" and (problem := service_account_problem(secrets[name])) is not None:
                problems[pid] = f"{name} {reference} {problem}"
                break
        else:
            found[pid] = secrets
    return found, problems


def service_account_problem(text: str) -> str | None:
    """What makes `text` unusable as a service-account key file, never quoting it; None when usable."""
    try:
        info = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "is not JSON (a service-account key file is)"
    if not isinstance(info, dict):
        return "is not a service-account key file (a JSON object)"
    missing = [name for name in REQUIRED_FIELDS if not info.get(name)]
    if missing:
        return f"is not a service-account key file: it has no {', '.join(missing)}"
    return None


def secret_values(credentials: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Every value worth scrubbing from what reaches a client: the AWS keys, and the service
    account's private key and key id (the rest of its key file is not secret)."""
    values: list[str] = []
    for secrets in credentials.values():
        for name, value in secrets.items():
            if name != "service_account":
                values.append(value)
                continue
            info = orjson.loads(value)
            values += [str(info[field]) for field in ("private_key", "private_key_id") if info.get(field)]
    return values
