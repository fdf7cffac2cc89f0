"""What one routing table needs to serve: the table, a transport per provider, the credentials.

A `Serving` is built whole, then swapped in with one assignment; a request keeps the `Serving`
it started with, so a reload never changes the rules under a request in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

from .cloud_credentials import resolve_cloud_credentials, secret_values
from .credentials import CredentialKey, resolve_credentials, usable_credentials
from .scrub import CredentialScrubber
from .table import Credential, LoadedTable
from .upstream import Transport, transport_for


@dataclass(frozen=True)
class Serving:
    table: LoadedTable
    transports: Mapping[str, Transport]
    credentials: Mapping[CredentialKey, str]
    credential_problems: Mapping[CredentialKey, str]
    revision_header: bytes
    header_prefix: bytes
    """The gateway's header prefix, lower-cased as ASGI header names are (`x-langwatch-`)."""
    cloud_credentials: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """bedrock and vertex providers' secrets by name (cloud_credentials.py); their transports sign with them."""
    loaded_at: float = field(default_factory=time.time)
    """When this table was built to serve (its credentials re-read later keep it)."""

    @cached_property
    def usable(self) -> Mapping[str, tuple[Credential, ...]]:
        """Per provider, the credentials a request can carry: those needing none or whose secret was
        read; none for a bedrock or vertex provider whose cloud credentials did not resolve."""
        return {pid: () if provider.cloud_credentials and pid not in self.cloud_credentials
                else usable_credentials(provider, self.credentials)
                for pid, provider in self.table.providers.items()}

    @cached_property
    def scrub(self) -> CredentialScrubber:
        """Takes the value of every credential held here out of bytes bound for a client."""
        return CredentialScrubber([*self.credentials.values(), *secret_values(self.cloud_credentials)])


def by_credential(problems: Mapping[str, str]) -> dict[CredentialKey, str]:
    """A cloud provider's problem, keyed as its one credential (named as the provider) is."""
    return {(pid, pid): problem for pid, problem in problems.items()}


def build_serving(table: LoadedTable, previous: Serving | None = None) -> Serving:
    """Reuse the previous table's transports (and their pooled connections) where a provider is unchanged."""
    credentials, problems = resolve_credentials(table.providers)
    cloud, cloud_problems = resolve_cloud_credentials(table.providers)
    transports: dict[str, Transport] = {}
    for pid, provider in table.providers.items():
        if (previous is not None and previous.table.providers.get(pid) == provider and pid in previous.transports
                and previous.cloud_credentials.get(pid) == cloud.get(pid)):
            transports[pid] = previous.transports[pid]
        else:
            transports[pid] = transport_for(provider, cloud.get(pid, {}))
    return Serving(
        table, transports, credentials, {**problems, **by_credential(cloud_problems)}, table.revision.encode(),
        table.gateway.header_prefix.lower().encode(), cloud,
    )


def unused_transports(old: Serving, new: Serving) -> list[Transport]:
    """The old table's transports the new one dropped."""
    return [t for pid, t in old.transports.items() if new.transports.get(pid) is not t]


async def close_unused(unused: list[Transport], grace_s: float = 30.0) -> None:
    """Retire transports a new table dropped (`unused_transports`).

    A retired transport closes once its last answer has ended; the grace covers requests that read
    the old table but have not reached the provider yet (a retry's backoff, a budget admission).
    Only the transports are held meanwhile, not the old `Serving`: its table is let go of as soon
    as its last request is done (`reload.Reloader`)."""
    if not unused:
        return
    await asyncio.sleep(grace_s)
    for transport in unused:
        await transport.aclose()


def with_credentials(serving: Serving) -> Serving | None:
    """The same table with its credential references resolved again (a rotated `file:` secret),
    or None when nothing changed."""
    providers = serving.table.providers
    credentials, problems = resolve_credentials(providers)
    cloud, cloud_problems = resolve_cloud_credentials(providers)
    problems.update(by_credential(cloud_problems))
    if (credentials == serving.credentials and problems == serving.credential_problems
            and cloud == serving.cloud_credentials):
        return None
    transports = {pid: transport if cloud.get(pid) == serving.cloud_credentials.get(pid)
                  else transport_for(providers[pid], cloud.get(pid, {}))
                  for pid, transport in serving.transports.items()}
    return replace(serving, credentials=credentials, credential_problems=problems, cloud_credentials=cloud,
                   transports=transports)
