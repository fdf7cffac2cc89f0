"""The model registry: model names, the providers serving them, prices, Azure deployments."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from .. import codes
from ..context import Context
from ..diagnostics import Diagnostic, suggest
from ..resolve import upstream_model
from ..validate import MODEL_NAME_PATTERN

PRICE_QUANTUM = Decimal("0.000001")
LOOKS_PER_TOKEN_BELOW = Decimal("0.001")


def check_registry(ctx: Context) -> Iterator[Diagnostic]:
    providers = ctx.policy.providers
    for name, model in ctx.policy.models.items():
        where = ("models", name)
        if "/" in name or not MODEL_NAME_PATTERN.match(name):
            yield Diagnostic.of(
                codes.INVALID_ID,
                f"model name '{name}' may not contain '/', '*' or spaces ('/' separates provider/model)",
                ctx.index.key(*where),
            )
        if not model.providers:
            yield Diagnostic.of(
                codes.MODEL_WITHOUT_PROVIDER,
                f"model '{name}' is served by no provider",
                ctx.index.value(*where, "providers"),
            )
        for i, pid in enumerate(model.providers):
            if not ctx.defined("providers", pid):
                yield Diagnostic.of(
                    codes.UNKNOWN_PROVIDER,
                    f"model '{name}' names unknown provider '{pid}'",
                    ctx.index.value(*where, "providers", i),
                    hint=suggest(pid, providers),
                )
                continue
            provider = providers.get(pid)
            if provider is not None and provider.type == "azure_openai" and name not in (provider.deployments or {}):
                yield Diagnostic.of(
                    codes.AZURE_DEPLOYMENT_MISSING,
                    f"azure_openai provider '{pid}' has no deployment for model '{name}'",
                    ctx.index.value(*where, "providers", i),
                    hint=f"add `deployments: {{{name}: <deployment name>}}` to provider '{pid}'",
                )
            if provider is not None and provider.type == "bedrock" and "anthropic." not in upstream_model(provider, name):
                yield Diagnostic.of(
                    codes.BEDROCK_MODEL_NOT_ANTHROPIC,
                    f"bedrock provider '{pid}' would ask for model '{name}' as '{upstream_model(provider, name)}', "
                    "which is not an Anthropic model id on Bedrock (Gatepost sends the Messages body to InvokeModel)",
                    ctx.index.value(*where, "providers", i),
                    hint=f"add `model_ids: {{{name}: us.anthropic.<model id>}}` (a model id or inference profile) "
                    f"to provider '{pid}'",
                )
        if model.price is not None:
            for field_name in ("input", "cached_input", "output", "reasoning"):
                value = getattr(model.price, field_name)
                if value is not None and value != value.quantize(PRICE_QUANTUM):
                    yield Diagnostic.of(
                        codes.PRICE_TOO_PRECISE,
                        f"model '{name}' price.{field_name} {value:f} is finer than 0.000001 USD per 1M tokens",
                        ctx.index.value(*where, "price", field_name),
                        hint=_precision_hint(value),
                    )
    for pid, provider in providers.items():
        for model_name in {**(provider.deployments or {}), **(provider.model_ids or {})}:
            if model_name not in ctx.policy.models and not ctx.defined("models", model_name):
                yield Diagnostic.of(
                    codes.UNKNOWN_MODEL,
                    f"provider '{pid}' has a {'deployment' if provider.deployments else 'model id'} for unknown model '{model_name}'",
                    ctx.index.key("providers", pid, "deployments" if provider.deployments else "model_ids", model_name),
                    hint=suggest(model_name, ctx.policy.models),
                )


def _precision_hint(value: Decimal) -> str:
    if value < LOOKS_PER_TOKEN_BELOW:
        per_million = (value * 1_000_000).normalize()
        return f"prices are USD per 1M tokens: {value:f} per token is {per_million:f} per 1M tokens"
    return "round it to at most 6 decimal places"
