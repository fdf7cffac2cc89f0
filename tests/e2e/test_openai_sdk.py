"""The openai SDK against the proxy against a mock upstream, all on 127.0.0.1."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.e2e.conftest import (
    ALICE_KEY,
    PLATFORM_KEY,
    REVOKED_KEY,
    UPSTREAM_AZURE_SECRET,
    UPSTREAM_OPENAI_SECRET,
    Stack,
)

pytestmark = pytest.mark.e2e


def client(stack: Stack, key: str = ALICE_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)


def test_chat_completion(stack: Stack) -> None:
    reply = client(stack).chat.completions.create(model="gpt-5-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "mock reply from gpt-5-mini"
    assert reply.usage is not None and reply.usage.total_tokens == 16
    [seen] = stack.upstream.requests
    assert seen.path == "/v1/chat/completions" and seen.json["model"] == "gpt-5-mini"


def test_chat_completion_streams(stack: Stack) -> None:
    stream = client(stack).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "mock reply from gpt-4o"
    assert stack.upstream.requests[0].json["stream"] is True


def test_responses(stack: Stack) -> None:
    reply = client(stack).responses.create(model="gpt-4o", input="hi")
    assert reply.output_text == "mock reply from gpt-4o"
    assert stack.upstream.requests[0].path == "/v1/responses"


def test_responses_streams_event_by_event(stack: Stack) -> None:
    events = list(client(stack).responses.create(model="gpt-5-mini", input="hi", stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") == 4
    assert events[-1].response.id.startswith("resp_")


def test_bad_key_is_an_authentication_error(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        client(stack, "gp-not-a-key").chat.completions.create(model="gpt-4o", messages=[])
    assert info.value.code == "invalid_api_key"
    assert info.value.response.headers["x-should-retry"] == "false"
    assert stack.upstream.requests == []


def test_revoked_key_is_refused(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        client(stack, REVOKED_KEY).responses.create(model="gpt-4o", input="hi")
    assert "vk-gone" in info.value.message and "revoked" in info.value.message
    assert REVOKED_KEY not in info.value.message


def test_off_list_model_is_permission_denied_with_our_message(stack: Stack) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        client(stack).chat.completions.create(model="o3", messages=[{"role": "user", "content": "hi"}])
    message = info.value.message
    assert info.value.code == "model_not_allowed"
    assert "'o3'" in message and "vk-alice-codex" in message and "gp-e2e-alice" in message
    assert "models_allowed" in message and "alias" in message and "policy.yaml:" in message
    assert info.value.response.headers["x-should-retry"] == "false"
    assert stack.upstream.requests == []


def test_alias_lands_on_azure_with_its_path_and_credential(stack: Stack) -> None:
    reply = client(stack, PLATFORM_KEY).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "mock reply from gpt4o-prod"
    [seen] = stack.upstream.requests
    assert seen.path == "/openai/deployments/gpt4o-prod/chat/completions"
    assert seen.query == {"api-version": "2024-10-21"}
    assert seen.headers["api-key"] == UPSTREAM_AZURE_SECRET
    assert "authorization" not in seen.headers


def test_the_clients_key_never_reaches_the_upstream(stack: Stack) -> None:
    client(stack).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    client(stack, PLATFORM_KEY).responses.create(model="gpt-4o", input="hi")
    for seen in stack.upstream.requests:
        raw = repr(seen.headers) + seen.body.decode()
        assert ALICE_KEY not in raw and PLATFORM_KEY not in raw
    assert stack.upstream.requests[0].headers["authorization"] == f"Bearer {UPSTREAM_OPENAI_SECRET}"


def test_models_lists_what_the_key_may_request(stack: Stack) -> None:
    ids = sorted(m.id for m in client(stack).models.list())
    assert ids == ["gpt-4o", "gpt-5-mini"]


def test_policy_revision_header_on_every_response(stack: Stack) -> None:
    revision = stack.app.serving.table.revision  # type: ignore[attr-defined]
    with httpx.Client(base_url=stack.proxy.base_url) as http:
        ok = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": []}, headers={"authorization": f"Bearer {ALICE_KEY}"})
        denied = http.post("/v1/chat/completions", json={"model": "gpt-4o"}, headers={"authorization": "Bearer nope"})
    for response in (ok, denied):
        assert response.headers["x-langwatch-policy-revision"] == revision
    assert ok.headers["x-langwatch-provider"] == "openai-primary"
    assert ok.headers["x-langwatch-fallback-count"] == "0"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_request_error"),
        (b'{"messages": []}', "invalid_request_error"),
        (b'{"model": "gpt-4o", "pad": "' + b"x" * 70000 + b'"}', "request_too_large"),
    ],
)
def test_malformed_requests_are_400(stack: Stack, body: bytes, code: str) -> None:
    with httpx.Client(base_url=stack.proxy.base_url) as http:
        response = http.post(
            "/v1/chat/completions", content=body,
            headers={"authorization": f"Bearer {ALICE_KEY}", "content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code
    assert stack.upstream.requests == []


def test_x_api_key_header_authenticates_too(stack: Stack) -> None:
    with httpx.Client(base_url=stack.proxy.base_url) as http:
        response = http.post("/v1/responses", json={"model": "gpt-5-mini", "input": "hi"}, headers={"x-api-key": ALICE_KEY})
    assert response.status_code == 200


def test_upstream_failure_without_fallback_is_502(stack: Stack) -> None:
    stack.upstream.fail(status=500, times=5)
    with pytest.raises(openai.InternalServerError) as info:
        client(stack).chat.completions.create(model="gpt-5-mini", messages=[])
    assert info.value.status_code == 502 and "openai-primary" in info.value.message
    assert UPSTREAM_OPENAI_SECRET not in info.value.message


def test_codex_request_passes_through_untouched_but_for_the_model(stack: Stack) -> None:
    """The captured Codex request (unknown tool types, client_metadata) reaches the upstream intact."""
    import json

    from tests.conftest import ROOT

    body = json.loads((ROOT / "tests" / "fixtures" / "codex-responses-request.json").read_text())
    with httpx.Client(base_url=stack.proxy.base_url, timeout=10) as http:
        response = http.post("/v1/responses", json=body, headers={"authorization": f"Bearer {PLATFORM_KEY}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "event: response.completed" in response.text
    sent = stack.upstream.requests[0].json
    assert sent == {**body, "model": "gpt4o-prod"}
    assert {t["type"] for t in sent["tools"]} >= {"namespace", "web_search", "function"}
