"""AWS Bedrock: Anthropic models through InvokeModel (`/model/{modelId}/invoke`) and
InvokeModelWithResponseStream (`/model/{modelId}/invoke-with-response-stream`).

The body is the Messages request without `model` (it is in the path) and `stream` (the operation
says it), with Bedrock's `anthropic_version` and, in `anthropic_beta`, the client's beta flags
Bedrock accepts (claude_betas.py). The transport signs every send with SigV4 and relays the
answer stream's event-stream frames as Messages SSE (bedrock_transport.py).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import quote

import orjson

from ..table import Provider, Target
from .base import Outbound, UpstreamCall
from .claude_betas import cloud_betas

ANTHROPIC_VERSION = "bedrock-2023-05-31"
LEFT_OUT = frozenset({"model", "stream"})


def endpoint(provider: Provider) -> str:
    return (provider.base_url or f"https://bedrock-runtime.{provider.region}.amazonaws.com").rstrip("/")


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    action = "invoke-with-response-stream" if out.stream else "invoke"
    url = f"{endpoint(provider)}/model/{_model_path(target.upstream_model)}/{action}"
    if out.stream:
        headers = {"content-type": "application/json", "accept": "application/vnd.amazon.eventstream",
                   "x-amzn-bedrock-accept": "application/json"}
    else:
        headers = {"content-type": "application/json", "accept": "application/json"}
    body = {k: v for k, v in out.payload.items() if k not in LEFT_OUT}
    body["anthropic_version"] = ANTHROPIC_VERSION
    betas = cloud_betas(out.client_headers)
    if betas:
        body["anthropic_beta"] = betas
    return UpstreamCall("POST", url, headers, orjson.dumps(body), out.stream)


@lru_cache(maxsize=1024)
def _model_path(model_id: str) -> str:
    """The model id as one path segment (`:` and `/` escaped): the same few ids on every call."""
    return quote(model_id, safe="")
