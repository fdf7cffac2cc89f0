"""Whether this process should be sent traffic (`/readyz`), as opposed to whether it is alive
(`/healthz`): its table is loaded, the Redis ledger it is configured with answers, and it is not
draining for a shutdown.

The ledger is probed by a task beside the server, every `PROBE_S`, and the answer kept: `/readyz`
reads a flag and never waits on the network, so a load balancer's checks cost a request nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

PROBE_S = 2.0
"""How long a Redis probe's answer stands: a ledger that stops answering takes a process out of
rotation within this, plus the probe's own timeout."""


@runtime_checkable
class ProbedLedger(Protocol):
    """A ledger on the network, which can say cheaply whether it answers now."""

    async def reachable(self) -> bool: ...


@dataclass
class Readiness:
    loaded: bool = True
    draining: bool = False
    ledger_reachable: bool = True

    def reasons(self) -> list[str]:
        """Why this process is not ready, in the order an operator would look: empty when it is."""
        found = []
        if not self.loaded:
            found.append("table_not_loaded")
        if not self.ledger_reachable:
            found.append("ledger_unreachable")
        if self.draining:
            found.append("draining")
        return found


async def keep_probing(readiness: Readiness, ledger: ProbedLedger, every_s: float = PROBE_S) -> None:
    while True:
        readiness.ledger_reachable = await ledger.reachable()
        await asyncio.sleep(every_s)
