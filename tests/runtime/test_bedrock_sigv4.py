"""The gateway's SigV4 signer gives botocore's signature byte for byte: for many calls (models,
operations, endpoints, bodies), with and without a session token, across UTC date rollovers,
every header it adds equals what `SigV4Auth.add_auth` adds to the same call at the same moment."""

from __future__ import annotations

import datetime
import itertools
import random

import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from runtime.upstream.base import UpstreamCall
from runtime.upstream.bedrock_sigv4 import SigV4Signer

KEYS = {"aws_access_key_id": "GATEPOSTTESTKEYID001", "aws_secret_access_key": "gatepost-test-secret-access-key-0123"}
SESSION = {**KEYS, "aws_session_token": "gatepost-test-session-token-FwoGZXIvYXdzEJr//+=="}
SPACED = {**KEYS, "aws_session_token": " a  token\twith spaces "}
"""A header value is signed with its spaces trimmed and squeezed, and sent as it is."""
ENDPOINTS = ["https://bedrock-runtime.us-east-1.amazonaws.com", "http://127.0.0.1:8790", "https://VPCE-0123.example.com:443",
             "http://localhost:80", "https://bedrock-runtime.eu-west-3.amazonaws.com/prefix"]
MODELS = ["anthropic.claude-haiku-4-5-20251001-v1%3A0", "us.anthropic.claude-sonnet-4-5-20250929-v1%3A0",
          "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc"]
ACTIONS = ["invoke", "invoke-with-response-stream"]
MOMENTS = [
    datetime.datetime(2026, 12, 1, 23, 59, 59, 999999),
    datetime.datetime(2026, 12, 2, 0, 0, 0),
    datetime.datetime(2026, 12, 31, 23, 59, 59),
    datetime.datetime(2027, 1, 1, 0, 0, 1),
    datetime.datetime(2026, 12, 1, 12, 0, 0),
    datetime.datetime(2028, 2, 29, 8, 30, 5),
]


def bodies() -> list[bytes]:
    rng = random.Random(17)
    made = [b"", b"{}", '{"messages":[{"role":"user","content":"h\u00e9llo \u2603"}]}'.encode()]
    made += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))) for _ in range(5)]
    return made


def headers_for(url: str, content_type: str = "application/json") -> dict[str, str]:
    if url.endswith("invoke-with-response-stream"):
        return {"content-type": content_type, "accept": "application/vnd.amazon.eventstream",
                "x-amzn-bedrock-accept": "application/json"}
    return {"content-type": content_type, "accept": "application/json"}


def botocore_headers(keys: dict[str, str], region: str, call: UpstreamCall, moment: datetime.datetime,
                     monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """What botocore's `SigV4Auth.add_auth` adds to the call at `moment`, the signed headers being
    the call's `content-type` (and the `host` and `x-amz-*` ones botocore adds)."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: moment)
    request = AWSRequest(method=call.method, url=call.url, data=call.body,
                         headers={"content-type": call.headers["content-type"]})
    credentials = Credentials(keys["aws_access_key_id"], keys["aws_secret_access_key"], keys.get("aws_session_token"))
    SigV4Auth(credentials, "bedrock", region).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


@pytest.mark.parametrize("keys", [KEYS, SESSION, SPACED], ids=["long-term keys", "session token", "spaced token"])
@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3"])
def test_every_signature_equals_botocores(keys: dict[str, str], region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [MOMENTS[0]]
    signer = SigV4Signer(keys, region, clock=lambda: now[0])
    cases = itertools.product(MOMENTS, ENDPOINTS, MODELS, ACTIONS, bodies())
    checked = 0
    for moment, endpoint, model, action, body in cases:
        now[0] = moment
        url = f"{endpoint}/model/{model}/{action}"
        content_type = "application/json" if checked % 2 else " application/json;  charset=utf-8 "
        call = UpstreamCall("POST", url, headers_for(url, content_type), body, action != "invoke")
        signed = signer.sign(call)
        expected = botocore_headers(keys, region, call, moment, monkeypatch)
        assert signed.headers == {**call.headers, **expected}, (moment, url, body[:40])
        assert (signed.method, signed.url, signed.body, signed.stream) == (call.method, call.url, call.body, call.stream)
        checked += 1
    assert checked == len(MOMENTS) * len(ENDPOINTS) * len(MODELS) * len(ACTIONS) * len(bodies())


def test_a_date_rollover_and_a_clock_stepping_back_change_the_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    moments = [MOMENTS[0], MOMENTS[1], MOMENTS[0], MOMENTS[1] + datetime.timedelta(days=1)]
    now = [moments[0]]
    signer = SigV4Signer(SESSION, "us-east-1", clock=lambda: now[0])
    call = UpstreamCall("POST", f"{ENDPOINTS[0]}/model/{MODELS[0]}/invoke", headers_for("invoke"), b'{"a":1}', False)
    scopes = []
    for moment in moments:
        now[0] = moment
        signed = signer.sign(call)
        assert signed.headers == {**call.headers, **botocore_headers(SESSION, "us-east-1", call, moment, monkeypatch)}
        scopes.append(signed.headers["authorization"].split("/")[1])
    assert scopes == ["20261201", "20261202", "20261201", "20261203"]


def test_a_call_signed_again_gets_a_fresh_signature_not_one_over_the_old(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [MOMENTS[4]]
    signer = SigV4Signer(SESSION, "us-east-1", clock=lambda: now[0])
    call = UpstreamCall("POST", f"{ENDPOINTS[1]}/model/{MODELS[1]}/invoke", headers_for("invoke"), b"{}", False)
    first = signer.sign(call)
    now[0] = MOMENTS[4] + datetime.timedelta(seconds=3)
    again = signer.sign(first)
    assert again.headers == {**call.headers, **botocore_headers(SESSION, "us-east-1", call, now[0], monkeypatch)}
