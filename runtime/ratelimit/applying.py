"""The rate limits a request counts against: its key's instances whose `models` take the route's
resolved model, as the specs the ledger admits."""

from __future__ import annotations

import fnmatch

from ..table import KeyEntry, LoadedTable, RateLimitInstance
from .limits import LimitSpec


def applies(limit: RateLimitInstance, model: str) -> bool:
    return limit.models is None or any(fnmatch.fnmatchcase(model, pattern) for pattern in limit.models)


class LimitSpecs:
    """`LimitSpec`s for the key's applicable instances, each built once per table record (a
    reload that replaces the record builds it anew). The list for a key and model is remembered
    while the table is the same object (a table is never changed, only replaced); callers share
    it and must not change it."""

    def __init__(self) -> None:
        self._specs: dict[str, tuple[RateLimitInstance, LimitSpec]] = {}
        self._table: LoadedTable | None = None
        self._applying: dict[tuple[str, str], list[LimitSpec]] = {}

    def applying(self, table: LoadedTable, key: KeyEntry, model: str) -> list[LimitSpec]:
        if table is not self._table:
            self._table = table
            self._applying = {}
        found = self._applying.get((key.id, model))
        if found is None:
            found = self._applying[(key.id, model)] = [
                self._spec(instance, limit) for instance in key.rate_limits
                if applies(limit := table.rate_limits[instance], model)
            ]
        return found

    def _spec(self, instance: str, limit: RateLimitInstance) -> LimitSpec:
        cached = self._specs.get(instance)
        if cached is not None and cached[0] is limit:
            return cached[1]
        spec = LimitSpec(instance, limit.requests, limit.tokens, limit.in_flight)
        self._specs[instance] = (limit, spec)
        return spec
