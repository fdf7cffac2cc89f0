"""The policy documents as pydantic models: the one definition of the v1 language.

`schemas/policy.schema.json` is generated from `PolicyDocument`. Checks that need the whole
policy (references, cycles, budgets) live in the compiler; these models only say what shape each
entity has, so that every field a user writes is either understood or reported.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

PROVIDER_TYPES: tuple[str, ...] = (
    "openai", "azure_openai", "openai_compatible", "anthropic", "gemini", "bedrock", "vertex", "mock",
)
CacheMode = Literal["respect", "disable", "force"]
Scope = Literal["org", "team", "principal", "vk"]
Window = Literal["day", "week", "month", "total"]
FALLBACK_CONDITIONS: tuple[str, ...] = ("5xx", "429", "timeout", "connect")

MAX_PRICE_USD = 5_000
MAX_BODY_BYTES = 64 * 1024 * 1024
"""Eight times the dearest list price today, and above every provider's request size limit. Together
they bound one request's reserved estimate ((64 MiB / 2 + 1M output tokens) at 5,000 USD per 1M
tokens: about $173,000) below the ledger's headroom over its $9,000,000 ceiling (64-bit pico-USD
holds $9,223,372), so a counter cannot overflow however the thresholds are crossed."""
MAX_SECONDS = 86_400
MIN_UPSTREAM_BYTES = 64 * 1024
MAX_UPSTREAM_BYTES = 1024 * 1024 * 1024
"""Range of the upstream answer and event limits: 64 KiB holds any text answer's event, 1 GiB is
past anything a provider sends and still a bound on one request's memory."""
MAX_HEADER_BYTES = 1024 * 1024

Money = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE_USD, description=f"USD per 1M tokens, 0 to {MAX_PRICE_USD:,}, at most 6 decimals"),
]
SECONDS_RANGE = "above 0, at most 86,400, to the millisecond"
Seconds = Annotated[Decimal, Field(gt=0, le=MAX_SECONDS, decimal_places=3)]
"""A duration: above 0, at most a day, to the millisecond (the artifact counts milliseconds)."""
Percent = Annotated[
    str | int | Decimal,
    Field(description='A percentage such as "80%" (or the number 80): above 0%, at most 1000%, at most 2 decimals'),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Circuit(_Model):
    """Cool-down of a provider that keeps failing (5xx, timeout, connect)."""

    failures: Annotated[int, Field(ge=0, le=1000)] = Field(
        5, description="Consecutive failures that open it, 0 to 1,000; 0 never"
    )
    cooldown_s: Annotated[Decimal, Field(gt=0, le=3600, decimal_places=3)] = Field(
        Decimal(30), description="Seconds it is skipped: above 0, at most 3,600, to the millisecond"
    )


class Admin(_Model):
    """The read-only admin API and dashboard, served by `policy serve --admin-port` on a listener of its own."""

    token: str = Field(description="env:NAME or file:PATH holding the admin token (sent as `Authorization: "
                       "Bearer <token>`); never the token itself")


class Gateway(_Model):
    """Settings of the gateway as a whole."""

    header_prefix: str = Field(
        "X-LangWatch-", description="Prefix of the response headers the proxy adds: <prefix>Cache, <prefix>Fallback-Count, ..."
    )
    client_deadline_s: Seconds = Field(
        Decimal(600),
        description=f"Seconds clients wait for an answer ({SECONDS_RANGE}); "
        "fallback that can take longer warns",
    )
    max_body_bytes: Annotated[int, Field(gt=0, le=MAX_BODY_BYTES)] = Field(
        10 * 1024 * 1024, description="Largest request body accepted, in bytes: 1 to 64 MiB (67,108,864)"
    )
    max_answer_bytes: Annotated[int, Field(ge=MIN_UPSTREAM_BYTES, le=MAX_UPSTREAM_BYTES)] = Field(
        32 * 1024 * 1024,
        description="Largest whole (non-streamed) upstream answer relayed, in bytes: 64 KiB (65,536) to 1 GiB "
        "(1,073,741,824); beyond it the client gets a 502 provider_error",
    )
    max_event_bytes: Annotated[int, Field(ge=MIN_UPSTREAM_BYTES, le=MAX_UPSTREAM_BYTES)] = Field(
        16 * 1024 * 1024,
        description="Largest event of an upstream stream relayed, in bytes: 64 KiB (65,536) to 1 GiB "
        "(1,073,741,824); beyond it the stream ends with an error event",
    )
    header_timeout_s: Seconds = Field(
        Decimal(10), description=f"Seconds a client has to send a request's line and headers ({SECONDS_RANGE}); "
        "then the connection is closed"
    )
    body_timeout_s: Seconds = Field(
        Decimal(60), description=f"Seconds a client has to send a request's whole body after its headers "
        f"({SECONDS_RANGE}); then a 408 and the connection is closed. Answers and streams are not limited by it"
    )
    idle_timeout_s: Seconds = Field(
        Decimal(120), description=f"Seconds an idle keep-alive connection is kept open ({SECONDS_RANGE})"
    )
    max_header_bytes: Annotated[int, Field(ge=1024, le=MAX_HEADER_BYTES)] = Field(
        32 * 1024, description="Largest request line and headers, in bytes: 1,024 to 1 MiB (1,048,576); "
        "beyond it a 431"
    )
    max_headers: Annotated[int, Field(ge=1, le=10_000)] = Field(
        100, description="Most headers a request may carry: 1 to 10,000; beyond it a 431"
    )
    max_connections: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        4000, description="Most client connections one process keeps open: 1 to 1,000,000; requests on "
        "connections beyond it get a 503 overloaded"
    )
    max_in_flight: Annotated[int, Field(ge=1, le=1_000_000)] = Field(
        1000, description="Most requests one process forwards to providers at once: 1 to 1,000,000; beyond "
        "it a 503 overloaded"
    )
    admin: Admin | None = Field(None, description="The admin API and dashboard's token (`policy serve --admin-port`)")
    circuit: Circuit | None = Field(None, description="Default cool-down for every provider")
    description: str | None = None


class Timeouts(_Model):
    """Seconds, each above 0 and at most 86,400 (a day), to the millisecond."""

    connect_s: Seconds = Field(Decimal(5), description=f"Seconds to connect: {SECONDS_RANGE}")
    read_s: Seconds = Field(Decimal(60), description=f"Seconds between two reads: {SECONDS_RANGE}")
    total_s: Seconds = Field(Decimal(180), description=f"Seconds for the whole answer: {SECONDS_RANGE}")


MAX_CREDENTIAL_WEIGHT = 1000


class ApiKey(_Model):
    """One of a provider's several credentials, and where it is used (an Azure region's resource)."""

    api_key: str = Field(description="env:NAME or file:PATH; never the key itself")
    id: str | None = Field(
        None, description="A stable name for logs, headers and metrics (letters, digits and . _ - # @ :); "
        "default <provider>#<position, from 1>; never derived from the key"
    )
    weight: Annotated[int, Field(ge=1, le=MAX_CREDENTIAL_WEIGHT)] = Field(
        1, description=f"Share of the provider's requests, 1 to {MAX_CREDENTIAL_WEIGHT:,}, relative to the other credentials"
    )
    base_url: str | None = Field(None, description="Where this credential is used; default: the provider's base_url")
    api_version: str | None = Field(None, description="azure_openai: api-version at this base_url; default: the provider's")


class Provider(_Model):
    """An upstream account: where requests go and which credential they carry."""

    type: str = Field(description="openai | azure_openai | openai_compatible | anthropic | gemini | bedrock | vertex | mock")
    api_key: str | None = Field(
        None, description="env:NAME or file:PATH; never the key itself (optional for openai_compatible)"
    )
    api_keys: list[str | ApiKey] | None = Field(
        None, description="Several credentials instead of api_key, requests spread by weight, each cooling down on "
        "its own: each entry env:NAME, file:PATH or {api_key, id, weight, base_url, api_version}"
    )
    base_url: str | None = Field(None, description="Required for azure_openai and openai_compatible")
    api_version: str | None = Field(None, description="azure_openai: the api-version query parameter")
    deployments: dict[str, str] | None = Field(None, description="azure_openai: model -> deployment name")
    region: str | None = Field(None, description="bedrock: the AWS region, e.g. us-east-1")
    aws_access_key_id: str | None = Field(None, description="bedrock: env:NAME or file:PATH")
    aws_secret_access_key: str | None = Field(None, description="bedrock: env:NAME or file:PATH")
    aws_session_token: str | None = Field(None, description="bedrock, optional: env:NAME or file:PATH")
    project: str | None = Field(None, description="vertex: the Google Cloud project id")
    location: str | None = Field(None, description="vertex: the region (us-east5, europe-west1) or global")
    credentials: str | None = Field(None, description="vertex: the service-account key JSON, file:PATH or env:NAME")
    model_ids: dict[str, str] | None = Field(
        None, description="bedrock, vertex: model -> the provider's model id (default: the model's name)"
    )
    timeouts: Timeouts | None = None
    circuit: Circuit | None = Field(None, description="Cool-down for this provider (default: gateway.circuit)")
    description: str | None = None


def credential_entries(provider_id: str, provider: Provider) -> list[ApiKey]:
    """A provider's `api_keys` as entries, each with its id: the one given, else `<provider>#<position>`."""
    entries = []
    for position, entry in enumerate(provider.api_keys or (), start=1):
        given = ApiKey(api_key=entry) if isinstance(entry, str) else entry
        entries.append(given if given.id is not None else given.model_copy(update={"id": f"{provider_id}#{position}"}))
    return entries


class Price(_Model):
    """USD per 1M tokens, each 0 to 5,000 with at most 6 decimals."""

    input: Money
    output: Money
    cached_input: Money | None = Field(None, description="Defaults to the input price; same range")
    reasoning: Money | None = Field(None, description="Defaults to the output price; same range")


class Model(_Model):
    """A concrete model name in the registry and the providers that serve it, in order."""

    providers: list[str]
    price: Price | None = None
    description: str | None = None


class FallbackHop(_Model):
    provider: str
    model: str | None = Field(None, description="The model to ask this provider for; default: the routed model")


class Fallback(_Model):
    on: list[str | int] = Field(description="Conditions that move to the next target: 5xx, 429, timeout, connect")
    chain: list[str | FallbackHop] = Field(description="Providers (or {provider, model}) tried after the first")
    retries: Annotated[int, Field(ge=0, le=10)] = Field(0, description="Retries of the same target first, 0 to 10")


class Cache(_Model):
    mode: CacheMode = "respect"
    allow_override: bool = Field(False, description="Whether a request header may choose another mode")
    salt: bool = Field(False, description="disable: also defeat automatic prefix caching")


class Settings(_Model):
    """What a virtual key may do; set on a VK, a profile or a team's defaults."""

    models_allowed: list[str] | None = Field(None, description="Registered models or globs such as gpt-5*")
    model_aliases: dict[str, str] | None = Field(None, description="name -> model or provider/model")
    fallback: Fallback | None = None
    cache: Cache | None = None


class Profile(Settings):
    extends: str | None = None
    description: str | None = None


class Team(_Model):
    description: str | None = None
    members: list[str] | None = Field(None, description="Principals of this team; when set, VKs must name one")
    defaults: Settings | None = None


class VirtualKey(Settings):
    key_sha256: str = Field(description="sha256 hex digest of the key; `policy keys new` prints it")
    key_prefix: str | None = Field(None, description="The key's first 12 characters, for support look-ups")
    principal: str | None = None
    team: str | None = None
    extends: str | None = None
    status: Literal["active", "revoked"] = "active"
    expires_at: datetime | None = None
    description: str | None = None


class Breach(_Model):
    warn: Percent | None = None
    block: Percent = "100%"


class Budget(_Model):
    scope: Scope
    target: str = Field("*", description='An id, or "*" for one instance per team/principal/VK')
    window: Window
    timezone: str = Field("UTC", description="An IANA zone name such as Europe/Amsterdam, not the host's localtime")
    limit_usd: Decimal = Field(
        description="USD per window: above 0, at most 6 decimals, and where it blocks (limit_usd times "
        "on_breach.block) at most 9,000,000, the ledger's ceiling for one budget instance and window"
    )
    on_breach: Breach = Breach()
    description: str | None = None


RATE_UNITS: dict[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
"""The periods a rate may be given per, in seconds."""
MAX_REQUESTS_PER_PERIOD = 1_000_000
MAX_TOKENS_PER_PERIOD = 10_000_000_000
MAX_IN_FLIGHT = 100_000
RATE_FORMS = "N/second, N/minute, N/hour or N/day"


def _number_as_text(value: object) -> object:
    """A bare number (`requests: 60`) read as the text it is, so the compiler can say which unit it lacks."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


RATE_PATTERN = r"^[1-9][0-9]*/(second|minute|hour|day)$"
Rate = Annotated[str, BeforeValidator(_number_as_text)]


class RateLimit(_Model):
    """Requests, tokens and requests at once that a key, principal, team or the organisation may
    use; at least one of `requests`, `tokens`, `in_flight`. The rates are checked by the compiler
    (located errors with the accepted forms), not here, so the schema only describes them."""

    scope: Scope
    target: str = Field("*", description='An id, or "*" for one instance per team/principal/VK')
    models: list[str] | None = Field(
        None, description="Only requests whose resolved model is one of these registered models or matches "
        "one of these globs; default: every model"
    )
    requests: Rate | None = Field(
        None, description=f"Requests per period: {RATE_FORMS}, N from 1 to {MAX_REQUESTS_PER_PERIOD:,}",
        json_schema_extra={"pattern": RATE_PATTERN},
    )
    tokens: Rate | None = Field(
        None, description=f"Input plus output tokens per period: {RATE_FORMS}, N from 1 to "
        f"{MAX_TOKENS_PER_PERIOD:,}",
        json_schema_extra={"pattern": RATE_PATTERN},
    )
    in_flight: Annotated[int, Field(ge=1, le=MAX_IN_FLIGHT)] | None = Field(
        None, description=f"Requests running at once: 1 to {MAX_IN_FLIGHT:,}"
    )
    description: str | None = None


class PolicyDocument(_Model):
    """One policy file; the merged policy of a directory has the same shape."""

    gateway: Gateway | None = None
    providers: dict[str, Provider] = Field(default_factory=dict)
    models: dict[str, Model] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    profiles: dict[str, Profile] = Field(default_factory=dict)
    virtual_keys: dict[str, VirtualKey] = Field(default_factory=dict)
    budgets: dict[str, Budget] = Field(default_factory=dict)
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict)


ENTITY_SECTIONS: dict[str, type[_Model]] = {
    "providers": Provider,
    "models": Model,
    "teams": Team,
    "profiles": Profile,
    "virtual_keys": VirtualKey,
    "budgets": Budget,
    "rate_limits": RateLimit,
}
SECTIONS: tuple[str, ...] = ("gateway", *ENTITY_SECTIONS)


class TestExpectation(_Model):
    """What must happen; every field given is compared, the others are not."""

    decision: Literal["allow", "deny"]
    status: int | None = Field(None, description="deny: the HTTP status (401, 403, ...)")
    code: str | None = Field(None, description="deny: the error code (model_not_allowed, invalid_api_key, ...)")
    model: str | None = Field(None, description="allow: the registered model the name resolves to")
    first_target: str | None = Field(None, description="allow: provider/model of the first target")
    targets: list[str] | None = Field(None, description="allow: every target, provider/model, in order")
    budgets: list[str] | None = Field(None, description="allow: the budget instances that apply")
    rate_limits: list[str] | None = Field(
        None, description="allow: the rate limit instances that apply to the requested model"
    )
    cache: CacheMode | None = None


class TestCase(_Model):
    name: str
    vk: str | None = None
    key_prefix: str | None = None
    model: str
    surface: Literal["chat", "responses", "messages", "gemini"] = "responses"
    at: datetime | None = Field(None, description="When the request happens (expiry); default now")
    expect: TestExpectation


class PolicyTestFile(_Model):
    """A `*_test.yaml` file of `policy test` cases."""

    tests: list[TestCase]
