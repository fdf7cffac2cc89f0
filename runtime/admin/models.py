"""The admin API's answers, as pydantic models: the OpenAPI document is generated from them, and the
dashboard renders the same objects.

Money is given twice: exact integers of pico-USD (`*_pico`, what the ledger holds) and a decimal
string of dollars (`*_usd`, for reading). No model has a field for a key's hash, a provider
credential or request content.
"""

from __future__ import annotations

from datetime import datetime
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

GroupBy = Literal["team", "key", "model", "provider"]
Granularity = Literal["day", "hour"]
BudgetState = Literal["ok", "warn", "blocked"]
CircuitState = Literal["closed", "open", "resting", "no_credential"]


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Page(Answer, Generic[T]):
    total: int = Field(description="Items matching, on every page")
    page: int = Field(description="This page, from 1")
    per_page: int
    items: list[T]


class ProviderHealth(Answer):
    provider: str
    type: str
    state: CircuitState = Field(description="closed: serving; open: every credential cools down or rests; "
                                            "no_credential: none of its credentials resolved")
    ready_in_s: float = Field(description="Seconds until a credential can be tried again (0 when serving)")
    credentials: int
    credentials_missing: list[str] = Field(description="Ids of credentials whose reference did not resolve")


class Status(Answer):
    revision: str
    loaded_at: datetime = Field(description="When this revision started serving (UTC)")
    sources: list[str] = Field(description="The policy files the table was compiled from")
    virtual_keys: int
    requests_today: int = Field(description="Requests answered since 00:00 UTC, refused ones included")
    spend_today_pico: int
    spend_today_usd: str
    refusals_today: int = Field(description="Requests refused with 401, 402, 403 or 429 since 00:00 UTC")
    budgets_warn: int = Field(description="Budget instances past their warn mark in their current window")
    budgets_blocked: int
    providers: list[ProviderHealth]


class KeyInfo(Answer):
    id: str
    team: str | None
    principal: str | None
    status: str = Field(description="active, revoked or expired (past its expiry)")
    expires_at: datetime | None
    profile: str | None
    models: list[str] = Field(description="Models the key may request by name")
    aliases: list[str] = Field(description="Aliases the key may request, each resolving to an allowed model")
    budgets: list[str]
    rate_limits: list[str]
    last_used: datetime | None = Field(description="When the gateway last answered a request of the key")
    source: str | None = Field(description="The policy line that defines the key (file:line)")


class BudgetInfo(Answer):
    instance: str
    budget: str
    scope: str
    target: str
    window: str = Field(description="daily, weekly, monthly, ...")
    window_label: str = Field(description="The current window (2026-12)")
    spent_pico: int
    reserved_pico: int = Field(description="Estimates of requests in flight")
    limit_pico: int
    warn_pico: int | None
    block_pico: int
    spent_usd: str
    reserved_usd: str
    limit_usd: str
    warn_usd: str | None
    block_usd: str
    fraction_used: float = Field(description="spent / limit")
    warn_fraction: float | None = Field(description="warn / limit")
    block_fraction: float = Field(description="block / limit")
    state: BudgetState
    source: str | None = Field(description="The policy line of the budget (file:line)")


class RateLimitInfo(Answer):
    instance: str
    limit: str
    scope: str
    target: str
    models: list[str] | None = Field(description="The models the limit counts (None: every model)")
    requests_used: float
    requests_limit: int | None
    requests_period_s: float | None
    tokens_used: float
    tokens_limit: int | None
    tokens_period_s: float | None
    in_flight: int
    in_flight_limit: int | None
    fraction_used: float = Field(description="The highest use / limit of its kinds")
    source: str | None


class CredentialCircuit(Answer):
    id: str
    state: CircuitState
    failures: int = Field(description="Consecutive failures counted towards opening")
    ready_in_s: float
    weight: int


class CircuitInfo(Answer):
    provider: str
    state: CircuitState
    ready_in_s: float
    failures_to_open: int
    cooldown_s: float
    credentials: list[CredentialCircuit]


class RefusalInfo(Answer):
    at: datetime
    status: int
    code: str = Field(description="The error code the client got (invalid_api_key, budget_exceeded, ...)")
    key: str | None = Field(description="The virtual key's id, when the request named a known key")
    model: str | None
    source: str | None = Field(description="The policy line behind the refusal (file:line)")
    message: str = Field(description="The error message the client saw")


class RefusalCount(Answer):
    code: str
    count: int


class SpendPoint(Answer):
    at: datetime = Field(description="Start of the hour or day (UTC)")
    spent_pico: int
    spent_usd: str
    requests: int


class SpendLine(Answer):
    name: str = Field(description="The team, key id, model or provider ('' for none: keys without a team)")
    total_pico: int
    total_usd: str
    requests: int
    points: list[SpendPoint] = Field(description="One per bucket, zeros included, oldest first")


class SpendSeries(Answer):
    group_by: GroupBy
    granularity: Granularity
    since: datetime
    until: datetime
    buckets: list[datetime]
    total_pico: int
    total_usd: str
    lines: list[SpendLine] = Field(description="Sorted by total spend, highest first; beyond `top`, the rest "
                                   "summed as one line named '(others)', last")
