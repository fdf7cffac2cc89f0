"""The routing table: the one definition of the format the compiler writes and the runtime reads.

`schemas/routing-table.schema.json` is generated from `RoutingTable`. Money is integers of
micro-USD (prices: micro-USD per 1M tokens, i.e. pico-USD per token), durations integers of
milliseconds, thresholds integers of basis points (8000 = 80%).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from .source_map import SourceMap

FORMAT_VERSION = 1


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySpec(_Spec):
    header_prefix: str
    client_deadline_ms: int
    max_body_bytes: int
    header_timeout_ms: int
    body_timeout_ms: int
    idle_timeout_ms: int
    max_header_bytes: int
    max_headers: int
    max_connections: int
    max_in_flight: int


class TimeoutsSpec(_Spec):
    connect_ms: int
    read_ms: int
    total_ms: int


class CircuitSpec(_Spec):
    failures: int
    cooldown_ms: int


class ProviderSpec(_Spec):
    type: str
    protocol: Literal["openai", "anthropic", "gemini", "mock"]
    base_url: str | None
    api_key: str | None = Field(description="env:NAME or file:PATH, never a value")
    api_version: str | None
    deployments: dict[str, str]
    timeouts: TimeoutsSpec
    circuit: CircuitSpec


class PriceSpec(_Spec):
    input: int
    cached_input: int
    output: int
    reasoning: int


class ModelSpec(_Spec):
    providers: list[str]
    price: PriceSpec | None


class TargetSpec(_Spec):
    provider: str
    model: str
    upstream_model: str
    protocol: Literal["openai", "anthropic", "gemini", "mock"]


class RouteSpec(_Spec):
    model: str = Field(description="The registered model the requested name resolves to")
    alias_chain: list[str] = Field(description="Aliases followed, empty when the name is a model")
    targets: list[TargetSpec] = Field(description="Tried in this order")
    fallback_on: list[str]
    retries: int


class CacheSpec(_Spec):
    mode: Literal["respect", "disable", "force"]
    allow_override: bool
    salt: bool


class KeySpec(_Spec):
    status: Literal["active", "revoked"]
    expires_at: str | None
    principal: str | None
    team: str | None
    key_prefix: str | None
    profile: str | None
    cache: CacheSpec
    budgets: list[str]
    routes: dict[str, RouteSpec]


class BudgetSpec(_Spec):
    budget: str
    scope: Literal["org", "team", "principal", "vk"]
    target: str
    window: Literal["day", "week", "month", "total"]
    timezone: str
    limit_micros: int
    warn_bp: int | None
    block_bp: int


class Table(_Spec):
    """The part that decides requests; `revision` is the sha256 of its canonical JSON."""

    gateway: GatewaySpec
    providers: dict[str, ProviderSpec]
    models: dict[str, ModelSpec]
    keys: dict[str, str] = Field(description="key sha256 -> virtual key id")
    virtual_keys: dict[str, KeySpec]
    budgets: dict[str, BudgetSpec] = Field(description="budget instance id -> budget")


class SourceFileSpec(_Spec):
    path: str
    sha256: str


class RoutingTable(_Spec):
    format_version: Literal[1]
    compiler_version: str
    revision: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    table: Table
    sources: list[SourceFileSpec]
    source_map: SourceMap = Field(
        description="section -> entity id -> 'file:line' (or, for virtual keys, a map of their settings' lines "
        "and the id of their route set); section `routes`: route set id -> requested name -> the models_allowed "
        "entry that grants it (`granted_by`: entry and line) and the line behind each target (`targets`)"
    )
    _table_json: bytes | None = PrivateAttr(None)
    """The canonical JSON of `table` when it was made already (for the revision), so encoding the
    artifact does not make it twice; not part of the format."""

    def __eq__(self, other: object) -> bool:
        """Equal fields make equal tables, whether or not either kept its table's bytes."""
        if not isinstance(other, RoutingTable):
            return NotImplemented
        return self.__dict__ == other.__dict__
