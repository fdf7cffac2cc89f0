"""The error of a route none of whose targets answered: every target accounted for."""

from __future__ import annotations

from runtime.access_log import Attempt
from runtime.proxy.route_failure import route_failure_message
from runtime.table import Target

PRIMARY = Target("openai-primary", "gpt-4o", "gpt-4o", "openai")
EAST = Target("azure-east", "gpt-4o", "gpt4o-prod", "openai")


def attempt(target: Target, reason: str) -> Attempt:
    return {"provider": target.provider, "model": target.model, "reason": reason}


def test_targets_not_tried_are_named_with_the_condition_and_its_line() -> None:
    message = route_failure_message([PRIMARY, EAST], [attempt(PRIMARY, "500")], {"timeout"}, "profiles.yaml:12")
    assert message == ("openai-primary (gpt-4o) answered 500; azure-east (gpt-4o) was not tried: "
                       "this route falls back on timeout only, not on 5xx (profiles.yaml:12)")


def test_a_route_without_fallback_says_so() -> None:
    message = route_failure_message([PRIMARY, EAST], [attempt(PRIMARY, "timeout")], set(), None)
    assert message.endswith("azure-east (gpt-4o) was not tried: this route does not fall back")


def test_every_target_failed_counts_the_route_and_groups_retries() -> None:
    attempts = [attempt(PRIMARY, "circuit_open"), attempt(EAST, "503"), attempt(EAST, "503"), attempt(EAST, "429")]
    assert route_failure_message([PRIMARY, EAST], attempts, {"5xx", "429"}, None) == (
        "all 2 targets failed: openai-primary (gpt-4o) was skipped: cooling down after repeated failures; "
        "azure-east (gpt-4o) answered 503 (2 tries), then answered 429"
    )


def test_an_answer_over_the_size_limit_is_not_a_fallback_condition() -> None:
    failed: Attempt = {**attempt(PRIMARY, "too_large"), "detail": "sent an answer larger than gateway.max_answer_bytes"}
    message = route_failure_message([PRIMARY, EAST], [failed], {"5xx"}, None)
    assert message == ("openai-primary (gpt-4o) sent an answer larger than gateway.max_answer_bytes; azure-east (gpt-4o) "
                       "was not tried: an answer over the gateway's size limits is not a fallback condition")


def test_a_vertex_token_endpoint_that_fails_is_a_5xx_condition() -> None:
    vertex = Target("vertex-ai", "claude-sonnet-4-5", "claude-sonnet-4-5@20250929", "anthropic")
    bedrock = Target("bedrock-us", "claude-sonnet-4-5", "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic")
    message = route_failure_message([vertex, bedrock], [attempt(vertex, "token_refresh")], {"timeout"}, "vks.yaml:3")
    assert message == ("vertex-ai (claude-sonnet-4-5) could not get an access token: its token endpoint failed (5xx); "
                       "bedrock-us (claude-sonnet-4-5) was not tried: this route falls back on timeout only, "
                       "not on 5xx (vks.yaml:3)")
