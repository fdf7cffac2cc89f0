"""The routing table: the one definition of the format the compiler writes and the runtime reads.

`schemas/routing-table.schema.json` is generated from `RoutingTable`. Money is integers of
micro-USD (prices: micro-USD per 1M tokens, i.e. pico-USD per token), durations integers of
milliseconds, thresholds integers of basis points (8000 = 80%).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_serializer,
)

from .source_map import SourceMap

FORMAT_VERSION = 1


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewaySpec(_Spec):
    header_prefix: str
    client_deadline_ms: int
    max_body_bytes: int
    max_answer_bytes: int
    max_event_bytes: int
    header_timeout_ms: int
    body_timeout_ms: int
    idle_timeout_ms: int
    max_header_bytes: int
    max_headers: int
    max_connections: int
    max_in_flight: int
    admin_token: str | None = Field(None, description="env:NAME or file:PATH of the admin API's token, never a "
                                    "value; left out of the table's JSON when None")

    @model_serializer(mode="wrap")
    def _admin_token_only_when_set(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A table without an admin token is written as before the setting existed: its revision
        does not change."""
        data: dict[str, Any] = handler(self)
        if data.get("admin_token") is None:
            data.pop("admin_token", None)
        return data


class TimeoutsSpec(_Spec):
    connect_ms: int
    read_ms: int
    total_ms: int


class CircuitSpec(_Spec):
    failures: int
    cooldown_ms: int


class CredentialSpec(_Spec):
    """One of a provider's several credentials, its defaults filled in by the compiler."""

    id: str = Field(description="Names the credential in logs, headers and metrics")
    api_key: str = Field(description="env:NAME or file:PATH, never a value")
    weight: int = Field(description="Share of the provider's requests, relative to its other credentials")
    base_url: str | None = Field(description="Where it is used: its own, else the provider's")
    api_version: str | None = Field(description="Its own, else the provider's")


class ProviderSpec(_Spec):
    type: str
    protocol: Literal["openai", "anthropic", "gemini", "mock"]
    base_url: str | None
    api_key: str | None = Field(description="env:NAME or file:PATH, never a value")
    api_keys: list[CredentialSpec] | None = Field(description="Several credentials instead of api_key, in policy order")
    api_version: str | None
    deployments: dict[str, str] = Field(
        description="model -> the provider's name for it: Azure deployment, Bedrock or Vertex model id"
    )
    region: str | None = Field(None, description="bedrock: the AWS region")
    project: str | None = Field(None, description="vertex: the Google Cloud project")
    location: str | None = Field(None, description="vertex: the region, or global")
    cloud_credentials: dict[str, str] = Field(
        default_factory=dict,
        description="bedrock: aws_access_key_id, aws_secret_access_key, aws_session_token; vertex: "
        "service_account; each env:NAME or file:PATH, never a value"
    )
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


class RouteSet(dict[str, RouteSpec]):
    """A key's routes, validated once for every key that has them (see `route_set`): a key's
    `routes` takes it as it is instead of copying it, so thousands of keys of one profile hold
    one dict of routes, not one each."""


_ROUTES: TypeAdapter[dict[str, RouteSpec]] = TypeAdapter(dict[str, RouteSpec])


def route_set(routes: Mapping[str, RouteSpec]) -> RouteSet:
    """`routes` validated as a key's routes, to be shared by the keys that have them."""
    return RouteSet(_ROUTES.validate_python(routes))


def _validated_once(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return value if type(value) is RouteSet else handler(value)


class InstanceList(list[str]):
    """Instance ids validated once for every key that has them (see `instance_list`): keys under
    the same limits hold one list, not one each."""


def instance_list(ids: list[str]) -> InstanceList:
    """`ids` validated as a key's instance ids, to be shared by the keys that have them."""
    return InstanceList(_NAMES.validate_python(ids))


_NAMES: TypeAdapter[list[str]] = TypeAdapter(list[str])


def _names_validated_once(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    return value if type(value) is InstanceList else handler(value)


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
    rate_limits: Annotated[list[str], WrapValidator(_names_validated_once)] = Field(
        description="The rate limit instances that apply to the key, sorted"
    )
    routes: Annotated[dict[str, RouteSpec], WrapValidator(_validated_once)]


S = TypeVar("S", bound=_Spec)
_FIELD_NAMES: dict[type[_Spec], set[str]] = {}


def sharing_field_names(spec: S) -> S:
    """`spec`, its set of fields set shared with every spec of its type.

    Pydantic gives each instance a set of the fields it was given: 728 bytes for a key or a budget
    instance, twice the rest of it, and a table of 50k keys has 150k of them. Every field of a spec
    is required, so the sets are equal; specs are frozen, so the shared set is never added to."""
    names = _FIELD_NAMES.get(type(spec))
    if names is None:
        names = _FIELD_NAMES[type(spec)] = set(type(spec).model_fields)
    if spec.__pydantic_fields_set__ == names:
        object.__setattr__(spec, "__pydantic_fields_set__", names)
    return spec


class BudgetSpec(_Spec):
    budget: str
    scope: Literal["org", "team", "principal", "vk"]
    target: str
    window: Literal["day", "week", "month", "total"]
    timezone: str
    limit_micros: int
    warn_bp: int | None
    block_bp: int


class RateSpec(_Spec):
    count: int = Field(description="Allowed per period")
    period_s: int = Field(description="1, 60, 3600 or 86400")


class RateLimitSpec(_Spec):
    limit: str = Field(description="The policy's rate_limits name")
    scope: Literal["org", "team", "principal", "vk"]
    target: str = Field(description='This instance\'s member id ("org" for scope org)')
    models: list[str] | None = Field(
        description="Globs over the resolved model (the compiler writes the registered names, sorted); "
        "None: every model"
    )
    requests: RateSpec | None
    tokens: RateSpec | None = Field(description="Input plus output tokens")
    in_flight: int | None


class Table(_Spec):
    """The part that decides requests; `revision` is the sha256 of its canonical JSON."""

    gateway: GatewaySpec
    providers: dict[str, ProviderSpec]
    models: dict[str, ModelSpec]
    keys: dict[str, str] = Field(description="key sha256 -> virtual key id")
    virtual_keys: dict[str, KeySpec]
    budgets: dict[str, BudgetSpec] = Field(description="budget instance id -> budget")
    rate_limits: dict[str, RateLimitSpec] = Field(description="rate limit instance id -> rate limit")


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
    _table_parts: tuple[bytes, ...] | None = PrivateAttr(None)
    """The canonical JSON of `table` when it was made already (for the revision), in the pieces
    `canonical_parts` gives, so encoding the artifact does not make it twice; not part of the format."""

    def __eq__(self, other: object) -> bool:
        """Equal fields make equal tables, whether or not either kept its table's bytes."""
        if not isinstance(other, RoutingTable):
            return NotImplemented
        return self.__dict__ == other.__dict__
