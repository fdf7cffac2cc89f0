"""OpenAI-compatible servers (vLLM, Ollama, Groq, Mistral, DeepSeek, OpenRouter, ...): Chat Completions
only, at the policy's `base_url` (required, with /v1) + /chat/completions; a Bearer credential
when the provider has one, and no Authorization header at all when it has none (a local server).

Their targets carry `wire="chat"` (runtime.table.SINGLE_WIRE), so the decision never routes
another surface's request here untranslated; nor do they count tokens (no counting endpoint)."""

from __future__ import annotations

from ..table import Provider, Target
from .base import Outbound, UpstreamCall
from .body import with_model
from .openai import PATHS


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    base = (provider.base_url or "").rstrip("/")
    headers = {"content-type": "application/json", "accept": "text/event-stream" if out.stream else "application/json"}
    if credential:
        headers["authorization"] = f"Bearer {credential}"
    return UpstreamCall("POST", base + PATHS["chat"], headers, with_model(out, target.upstream_model), out.stream)
