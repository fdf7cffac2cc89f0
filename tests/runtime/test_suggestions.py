"""A near miss is answered with what was most likely meant: a model or alias, a path."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.support.apps import app_from
from tests.support.servers import ServerThread

QUICKSTART = EXAMPLES / "quickstart"
AUTH = {"authorization": "Bearer gp-quickstart-demo-key"}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with ServerThread(app_from(QUICKSTART)) as server:
        yield server.base_url


def refusal(base_url: str, model: str) -> str:
    r = httpx.post(base_url + "/v1/chat/completions", headers=AUTH,
                   json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 403
    return str(r.json()["error"]["message"])


@pytest.mark.parametrize(("model", "meant"), [("gpt-4oo", "gpt-4o"), ("GPT-4o", "gpt-4o"), ("fastt", "fast"),
                                              ("gpt5-mini", "gpt-5-mini")])
def test_a_near_miss_model_names_the_allowed_model_or_alias(base_url: str, model: str, meant: str) -> None:
    message = refusal(base_url, model)
    assert message.startswith(f"model '{model}' is not allowed for virtual key vk-demo (gp-quickstar…): "
                              f"did you mean '{meant}'? Otherwise extend its models_allowed (policy.yaml:")


def test_a_model_like_none_allowed_gets_no_guess(base_url: str) -> None:
    assert "did you mean" not in refusal(base_url, "llama-3-70b")


def test_policy_explain_shares_the_hint() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "explain", str(QUICKSTART), "--vk", "vk-demo", "--model", "gpt-4oo"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )
    assert "did you mean 'gpt-4o'?" in proc.stdout


@pytest.mark.parametrize(
    ("path", "meant"),
    [
        ("/chat/completions", "/v1/chat/completions? (the client's base URL is missing /v1)"),
        ("/responses", "/v1/responses? (the client's base URL is missing /v1)"),
        ("/messages", "/v1/messages? (the client's base URL is missing /v1)"),
        ("/v1/v1/messages", "/v1/messages? (the client's base URL ends in /v1 and the client adds another)"),
    ],
)
def test_a_path_missing_or_doubling_v1_names_the_right_one(base_url: str, path: str, meant: str) -> None:
    r = httpx.post(base_url + path, headers=AUTH, json={})
    assert r.status_code == 404
    assert r.json()["error"]["message"] == f"no route for POST {path}: did you mean POST {meant}"


def test_an_unknown_path_is_a_plain_404(base_url: str) -> None:
    r = httpx.get(base_url + "/nowhere")
    assert r.status_code == 404 and r.json()["error"]["message"] == "no route for GET /nowhere"
