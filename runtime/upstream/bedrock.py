"""AWS Bedrock: Anthropic models through InvokeModel (`/model/{modelId}/invoke`) and
InvokeModelWithResponseStream (`/model/{modelId}/invoke-with-response-stream`).

The body is the Messages request without `model` (it is in the path) and `stream` (the operation
says it), with Bedrock's `anthropic_version` and, in `anthropic_beta`, the client's beta flags
Bedrock accepts (claude_betas.py). Every send is signed with SigV4 by botocore, the
library of record, from the provider's AWS keys; a stream's AWS event-stream frames are relayed
as the Messages SSE stream they carry (eventstream.py), so the rest of the gateway sees an
Anthropic answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from urllib.parse import quote

import orjson
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ..table import Provider, Target
from .base import Outbound, UpstreamCall, UpstreamResponse
from .claude_betas import cloud_betas
from .eventstream import EVENT_STREAM_TYPE, EventStreamAnswer
from .http import HttpTransport

ANTHROPIC_VERSION = "bedrock-2023-05-31"
SIGNING_NAME = "bedrock"
"""The service name in Bedrock's SigV4 credential scope (the endpoint is bedrock-runtime)."""
LEFT_OUT = frozenset({"model", "stream"})


def endpoint(provider: Provider) -> str:
    return (provider.base_url or f"https://bedrock-runtime.{provider.region}.amazonaws.com").rstrip("/")


def prepare(provider: Provider, credential: str | None, target: Target, out: Outbound) -> UpstreamCall:
    action = "invoke-with-response-stream" if out.stream else "invoke"
    url = f"{endpoint(provider)}/model/{quote(target.upstream_model, safe='')}/{action}"
    if out.stream:
        headers = {"content-type": "application/json", "accept": EVENT_STREAM_TYPE,
                   "x-amzn-bedrock-accept": "application/json"}
    else:
        headers = {"content-type": "application/json", "accept": "application/json"}
    body = {k: v for k, v in out.payload.items() if k not in LEFT_OUT}
    body["anthropic_version"] = ANTHROPIC_VERSION
    betas = cloud_betas(out.client_headers)
    if betas:
        body["anthropic_beta"] = betas
    return UpstreamCall("POST", url, headers, orjson.dumps(body), out.stream)


class SigV4Signer:
    """botocore's SigV4 signer for one set of AWS keys in one region."""

    def __init__(self, keys: Mapping[str, str], region: str) -> None:
        credentials = Credentials(keys["aws_access_key_id"], keys["aws_secret_access_key"],
                                  keys.get("aws_session_token"))
        self._auth = SigV4Auth(credentials, SIGNING_NAME, region)

    def sign(self, call: UpstreamCall) -> UpstreamCall:
        """`call` with `Authorization`, `X-Amz-Date` (and `X-Amz-Security-Token`) for this moment.

        The signature covers the method, the path, the body, `host`, `content-type` and the
        `x-amz-*` headers, which is what AWS requires; the other headers (`accept`, the request
        id) are left out of it: botocore's cost grows with every header it signs (bench/signing.py)."""
        request = AWSRequest(method=call.method, url=call.url, data=call.body,
                             headers={"content-type": call.headers["content-type"]})
        self._auth.add_auth(request)
        return replace(call, headers={**call.headers, **{k.lower(): v for k, v in request.headers.items()}})


class BedrockTransport:
    """Signs each call (a retry is signed again, with a fresh date) and relays a stream's
    event-stream frames as Messages SSE; without keys (a reference that did not resolve) the
    provider is skipped before it is ever called."""

    def __init__(self, provider: Provider, keys: Mapping[str, str]) -> None:
        self._http = HttpTransport(provider)
        self._signer = SigV4Signer(keys, provider.region or "") if "aws_secret_access_key" in keys else None

    async def send(self, call: UpstreamCall) -> UpstreamResponse:
        if self._signer is not None:
            call = self._signer.sign(call)
        response = await self._http.send(call)
        if call.stream and response.status == 200 and _content_type(response) == EVENT_STREAM_TYPE.encode():
            return EventStreamAnswer(response)
        return response

    @property
    def in_flight(self) -> int:
        return self._http.in_flight

    async def aclose(self) -> None:
        await self._http.aclose()


def _content_type(response: UpstreamResponse) -> bytes:
    for name, value in response.headers:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower()
    return b""
