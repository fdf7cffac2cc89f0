"""The gateway's SigV4 signatures as the mock Bedrock checks them, with botocore, from the known
test keys: a signed call is taken, and a body changed after signing or a wrong secret is refused
with 403 in AWS's shape."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from runtime.table import Provider, Target, Timeouts
from runtime.upstream.base import Outbound, UpstreamCall
from runtime.upstream.bedrock import prepare
from runtime.upstream.bedrock_sigv4 import SigV4Signer
from tests.support.bedrock import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY, MockBedrock

KEYS = {"aws_access_key_id": TEST_ACCESS_KEY_ID, "aws_secret_access_key": TEST_SECRET_ACCESS_KEY}
TARGET = Target("bedrock-us", "claude-haiku-4-5", "anthropic.claude-haiku-4-5-20251001-v1:0", "anthropic")
REQUEST = Outbound("messages", {"model": "claude-haiku-4-5", "max_tokens": 8,
                                "messages": [{"role": "user", "content": "hi"}]}, False, {})


@pytest.fixture
def bedrock() -> Iterator[MockBedrock]:
    with MockBedrock() as mock:
        yield mock


def call_for(bedrock: MockBedrock) -> UpstreamCall:
    provider = Provider("bedrock-us", "bedrock", "anthropic", bedrock.base_url, None, None, {}, Timeouts(5, 5, 10), 5,
                        30.0, region=TEST_REGION)
    return prepare(provider, None, TARGET, REQUEST)


def send(call: UpstreamCall) -> httpx.Response:
    return httpx.post(call.url, headers=call.headers, content=call.body)


def test_a_signed_call_is_taken_with_the_model_id_escaped_in_the_path(bedrock: MockBedrock) -> None:
    call = SigV4Signer(KEYS, TEST_REGION).sign(call_for(bedrock))
    assert "/model/anthropic.claude-haiku-4-5-20251001-v1%3A0/invoke" in call.url
    answer = send(call)
    assert answer.status_code == 200 and answer.json()["type"] == "message"
    assert bedrock.refused == [] and bedrock.requests[0].model_id == TARGET.upstream_model


def test_a_body_changed_after_signing_is_refused_in_aws_shape(bedrock: MockBedrock) -> None:
    call = SigV4Signer(KEYS, TEST_REGION).sign(call_for(bedrock))
    answer = send(UpstreamCall(call.method, call.url, call.headers, call.body.replace(b'"hi"', b'"ho"'), call.stream))
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"].startswith("InvalidSignatureException:")
    assert answer.json()["message"].startswith("The request signature we calculated does not match")


def test_a_wrong_secret_and_an_unknown_key_are_refused(bedrock: MockBedrock) -> None:
    wrong = SigV4Signer({**KEYS, "aws_secret_access_key": "another-secret-access-key-0000"}, TEST_REGION)
    assert send(wrong.sign(call_for(bedrock))).status_code == 403
    stranger = SigV4Signer({**KEYS, "aws_access_key_id": "UNKNOWNKEYID00000000"}, TEST_REGION)
    refused = send(stranger.sign(call_for(bedrock)))
    assert refused.status_code == 403 and refused.headers["x-amzn-errortype"].startswith("UnrecognizedClientException")
    assert bedrock.refused == ["InvalidSignatureException", "UnrecognizedClientException"]
    assert TEST_SECRET_ACCESS_KEY not in refused.text
