"""Every client protocol against every target protocol it does not speak, through the translation
hub: Chat Completions, Responses, Anthropic Messages and Gemini clients (their own SDKs) on routes
to OpenAI, Anthropic and Gemini models, streaming and not, text answers, tool calls and tool
results (images included), and the answering model's price charged."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from runtime.ledger.sqlite import SqliteLedger
from tests.support.apps import app_from
from tests.support.servers import ServerThread
from tests.support.upstream import MockUpstream, Recorded

pytestmark = pytest.mark.e2e
KEY = "gp-e2e-pairs-0123456789abcdefghijklmn"
CLAUDE = "claude-haiku-4-5-20251001"
GPT = "gpt-5-mini"
GEMINI = "gemini-2.5-flash"
MODELS = {"openai": GPT, "anthropic": CLAUDE, "gemini": GEMINI}
CLIENTS = ("chat", "responses", "messages", "gemini")
NATIVE = {"chat": "openai", "responses": "openai", "messages": "anthropic", "gemini": "gemini"}
PAIRS = [(client, target) for client in CLIENTS for target in MODELS if NATIVE[client] != target]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n-pixels-").decode()
CHARGE = (11 * 1000 + 5 * 5000) * 10**6
"""What one answer costs at the test prices: every mock answer reports 11 input and 5 output tokens."""
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def policy(upstream: str) -> str:
    price = "price: {input: 1000, output: 5000}"
    return f"""\
gateway: {{header_prefix: X-LangWatch-}}
providers:
  openai-primary: {{type: openai, base_url: "{upstream}/v1", api_key: env:E2E_OPENAI_KEY}}
  anthropic-main: {{type: anthropic, base_url: "{upstream}", api_key: env:E2E_ANTHROPIC_KEY}}
  gemini-main: {{type: gemini, base_url: "{upstream}", api_key: env:E2E_GEMINI_KEY}}
models:
  {CLAUDE}: {{providers: [anthropic-main], {price}}}
  {GPT}: {{providers: [openai-primary], {price}}}
  {GEMINI}: {{providers: [gemini-main], {price}}}
virtual_keys:
  vk-pairs:
    key_sha256: {hashlib.sha256(KEY.encode()).hexdigest()}
    key_prefix: {KEY[:12]}
    principal: dev@acme.com
    models_allowed: [{CLAUDE}, {GPT}, {GEMINI}]
budgets:
  dev-daily: {{scope: principal, target: dev@acme.com, window: day, limit_usd: 1000}}
"""


@dataclass
class Hub:
    base_url: str
    upstream: MockUpstream
    data: Path
    server: ServerThread

    def spent(self) -> int:
        self.server.wait_idle()
        return sum(r.spent for r in SqliteLedger(self.data).counters())

    def sent(self) -> Recorded:
        [request] = self.upstream.requests
        return request


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    yield from serve(tmp_path, monkeypatch)


def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chat_only: bool = False) -> Iterator[Hub]:
    for name in ("E2E_OPENAI_KEY", "E2E_ANTHROPIC_KEY", "E2E_GEMINI_KEY"):
        monkeypatch.setenv(name, "provider-credential")
    with MockUpstream(chat_only=chat_only) as upstream:
        (tmp_path / "policy").mkdir()
        text = policy(upstream.base_url)
        if chat_only:
            text = text.replace("openai-primary: {type: openai,", "openai-primary: {type: openai_compatible,")
        (tmp_path / "policy" / "policy.yaml").write_text(text)
        app = app_from(tmp_path / "policy", ledger=SqliteLedger(tmp_path / "data"))
        with ServerThread(app) as server:
            yield Hub(server.base_url, upstream, tmp_path / "data", server)


def _openai(hub: Hub) -> openai.OpenAI:
    return openai.OpenAI(base_url=hub.base_url + "/v1", api_key=KEY, max_retries=0)


def _anthropic(hub: Hub) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=hub.base_url, api_key=KEY, max_retries=0)


def _genai(hub: Hub) -> Any:
    from google import genai
    from google.genai import types

    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=hub.base_url))


def _gemini_tools() -> Any:
    from google.genai import types

    declaration = types.FunctionDeclaration(name="get_weather", description="Weather now", parameters_json_schema=WEATHER)
    return types.GenerateContentConfig(tools=[types.Tool(function_declarations=[declaration])], system_instruction="be brief")


@dataclass(frozen=True)
class Reply:
    text: str
    calls: list[tuple[str, dict[str, Any]]]


def ask(hub: Hub, client: str, model: str, stream: bool, tools: bool = False) -> Reply:
    """One question in the client's own SDK; the answer's text and tool calls as the client saw them."""
    if client == "chat":
        chat_tools: Any = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}}] if tools else openai.omit
        messages: Any = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "weather?"}]
        if not stream:
            reply = _openai(hub).chat.completions.create(model=model, messages=messages, tools=chat_tools)
            message = reply.choices[0].message
            return Reply(message.content or "", [(c.function.name, json.loads(c.function.arguments))  # type: ignore[union-attr]
                                                 for c in message.tool_calls or []])
        chunks = list(_openai(hub).chat.completions.create(model=model, messages=messages, tools=chat_tools, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        deltas = [d for c in chunks if c.choices for d in c.choices[0].delta.tool_calls or []]
        calls = [(d.function.name or "", json.loads("".join(x.function.arguments or "" for x in deltas if x.index == d.index)))  # type: ignore[union-attr]
                 for d in deltas if d.id]
        return Reply(text, calls)
    if client == "responses":
        response_tools: Any = [{"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": False}] if tools else openai.omit
        if not stream:
            response = _openai(hub).responses.create(model=model, input="weather?", instructions="be brief", tools=response_tools)
        else:
            events = list(_openai(hub).responses.create(model=model, input="weather?", instructions="be brief",
                                                        tools=response_tools, stream=True))
            assert events[0].type == "response.created" and events[-1].type == "response.completed"
            assert [e.sequence_number for e in events] == list(range(len(events)))
            response = events[-1].response
        calls = [(i.name, json.loads(i.arguments)) for i in response.output if i.type == "function_call"]
        return Reply(response.output_text, calls)
    if client == "messages":
        message_tools: Any = [{"name": "get_weather", "input_schema": WEATHER}] if tools else anthropic.omit
        request: Any = {"model": model, "max_tokens": 64, "system": "be brief", "tools": message_tools,
                        "messages": [{"role": "user", "content": "weather?"}]}
        if not stream:
            answer = _anthropic(hub).messages.create(**request)
        else:
            with _anthropic(hub).messages.stream(**request) as message_stream:
                answer = message_stream.get_final_message()
        text = "".join(b.text for b in answer.content if b.type == "text")
        return Reply(text, [(b.name, dict(b.input)) for b in answer.content if b.type == "tool_use"])
    sdk = _genai(hub)
    config = _gemini_tools() if tools else None
    if not stream:
        result = sdk.models.generate_content(model=model, contents="weather?", config=config)
        return Reply(result.text or "", [(c.name, dict(c.args)) for c in result.function_calls or []])
    pieces = list(sdk.models.generate_content_stream(model=model, contents="weather?", config=config))
    text = "".join(p.text or "" for c in pieces for p in (c.candidates[0].content.parts or []) if p.text)
    calls = [(c.name, dict(c.args)) for piece in pieces for c in piece.function_calls or []]
    return Reply(text, calls)


def upstream_path(target: str, stream: bool) -> str:
    if target == "gemini":
        return f"/v1beta/models/{GEMINI}:{'streamGenerateContent' if stream else 'generateContent'}"
    return "/v1/chat/completions" if target == "openai" else "/v1/messages"


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("client", "target"), PAIRS)
def test_a_text_answer_crosses_and_the_answering_model_is_charged(hub: Hub, client: str, target: str, stream: bool) -> None:
    model = MODELS[target]
    reply = ask(hub, client, model, stream)
    assert reply == Reply(f"mock reply from {model}", [])
    sent = hub.sent()
    assert sent.path == upstream_path(target, stream)
    if client != "gemini":
        system = {"openai": lambda b: b["messages"][0]["content"], "anthropic": lambda b: b["system"],
                  "gemini": lambda b: b["systemInstruction"]["parts"][0]["text"]}[target](sent.json)
        assert system == "be brief"
    assert hub.spent() == CHARGE


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize(("client", "target"), PAIRS)
def test_a_tool_call_crosses_with_its_arguments(hub: Hub, client: str, target: str, stream: bool) -> None:
    hub.upstream.ask_tool("get_weather", {"city": "Utrecht"})
    reply = ask(hub, client, MODELS[target], stream, tools=True)
    assert reply.calls == [("get_weather", {"city": "Utrecht"})]
    sent = hub.sent().json
    declared = {"openai": lambda b: b["tools"][0]["function"]["parameters"], "anthropic": lambda b: b["tools"][0]["input_schema"],
                "gemini": lambda b: b["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]}[target](sent)
    assert declared == WEATHER


def history(client: str, model: str) -> tuple[str, dict[str, Any]]:
    """(path, body) of a second turn: the user's question, the model's tool call, and its result
    as text and an image (Gemini: text only; its images travel as parts after the result)."""
    image_url = f"data:image/png;base64,{PNG}"
    if client == "chat":
        return "/v1/chat/completions", {"model": model, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Utrecht"}'}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "12C"},
                                                                  {"type": "image_url", "image_url": {"url": image_url}}]}]}
    if client == "responses":
        return "/v1/responses", {"model": model, "input": [
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Utrecht"}'},
            {"type": "function_call_output", "call_id": "call_1",
             "output": [{"type": "input_text", "text": "12C"}, {"type": "input_image", "image_url": image_url}]}]}
    if client == "messages":
        image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
        return "/v1/messages", {"model": model, "max_tokens": 64, "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Utrecht"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
                                          "content": [{"type": "text", "text": "12C"}, image]}]}]}
    return f"/v1beta/models/{model}:generateContent", {"contents": [
        {"role": "user", "parts": [{"text": "weather?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Utrecht"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "12C"}}},
                                   {"inlineData": {"mimeType": "image/png", "data": PNG}}]}]}


@pytest.mark.parametrize(("client", "target"), PAIRS)
def test_a_tool_result_with_an_image_reaches_the_target_whole(hub: Hub, client: str, target: str) -> None:
    path, body = history(client, MODELS[target])
    r = httpx.post(hub.base_url + path, json=body, headers={"authorization": f"Bearer {KEY}", "x-goog-api-key": KEY})
    assert r.status_code == 200, r.text
    assert "x-langwatch-translation-dropped" not in r.headers
    sent = hub.sent().json
    if target == "openai":
        calls = [m for m in sent["messages"] if m.get("tool_calls")]
        [result] = [m for m in sent["messages"] if m["role"] == "tool"]
        assert calls[0]["tool_calls"][0]["function"]["name"] == "get_weather"
        assert result["tool_call_id"] == calls[0]["tool_calls"][0]["id"] and result["content"] == "12C"
        images = [p for m in sent["messages"] if m["role"] == "user" and isinstance(m["content"], list)
                  for p in m["content"] if p["type"] == "image_url"]
        assert images == [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]
    elif target == "anthropic":
        [use] = [b for m in sent["messages"] for b in m["content"] if b["type"] == "tool_use"]
        [result] = [b for m in sent["messages"] for b in m["content"] if b["type"] == "tool_result"]
        assert use["input"] == {"city": "Utrecht"} and result["tool_use_id"] == use["id"]
        inner = result["content"] if isinstance(result["content"], list) else [{"type": "text", "text": result["content"]}]
        blocks = inner + [b for m in sent["messages"] for b in m["content"] if b["type"] == "image"]
        assert {"type": "text", "text": "12C"} in blocks
        assert {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}} in blocks
    else:
        parts = [p for c in sent["contents"] for p in c["parts"]]
        [call] = [p["functionCall"] for p in parts if "functionCall" in p]
        [result] = [p["functionResponse"] for p in parts if "functionResponse" in p]
        assert call["args"] == {"city": "Utrecht"} and result == {"name": "get_weather", "response": {"output": "12C"}}
        assert {"inlineData": {"mimeType": "image/png", "data": PNG}} in parts
        assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]


def test_a_codex_view_image_result_reaches_claude_as_an_image_in_the_tool_result(hub: Hub) -> None:
    """Codex's view_image answers with a function_call_output whose output is a list holding an
    input_image: it reaches an Anthropic model inside the tool_result, not as an empty one."""
    _, body = history("responses", CLAUDE)
    r = httpx.post(hub.base_url + "/v1/responses", json=body, headers={"authorization": f"Bearer {KEY}"})
    assert r.status_code == 200
    [result] = [b for m in hub.sent().json["messages"] for b in m["content"] if b["type"] == "tool_result"]
    assert result["content"] == [{"type": "text", "text": "12C"},
                                 {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]


@pytest.mark.parametrize("target", ["openai", "anthropic"])
def test_a_gemini_stream_without_alt_sse_is_one_json_array(hub: Hub, target: str) -> None:
    model = MODELS[target]
    r = httpx.post(hub.base_url + f"/v1beta/models/{model}:streamGenerateContent", headers={"x-goog-api-key": KEY},
                   json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    chunks = r.json()
    assert "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]) == f"mock reply from {model}"
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP" and chunks[-1]["usageMetadata"]["totalTokenCount"] == 16


def test_refused_and_dropped_fields_of_a_gemini_request_are_named(hub: Hub) -> None:
    url = hub.base_url + f"/v1beta/models/{CLAUDE}:generateContent"
    headers = {"x-goog-api-key": KEY}
    contents = [{"role": "user", "parts": [{"text": "hi"}]}]
    r = httpx.post(url, headers=headers, json={"contents": contents, "generationConfig": {"responseMimeType": "application/json"}})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "generationConfig.responseMimeType json_object asks for JSON output" in r.json()["error"]["message"]
    assert hub.upstream.requests == []
    r = httpx.post(url, headers=headers, json={"contents": contents, "safetySettings": [{"category": "x", "threshold": "y"}],
                                               "tools": [{"googleSearch": {}}], "generationConfig": {"topK": 40, "temperature": 0.5}})
    assert r.status_code == 200
    assert r.headers["x-langwatch-translation-dropped"] == "safetySettings,tools:googleSearch,generationConfig.topK"
    assert hub.sent().json["temperature"] == 0.5


@pytest.mark.parametrize("target", ["openai", "anthropic", "gemini"])
def test_a_translated_error_reaches_a_gemini_or_other_client_in_its_own_shape(hub: Hub, target: str) -> None:
    hub.upstream.fail(status=400, times=1, body={"error": {"type": "invalid_request_error", "message": "bad schema", "status": "INVALID_ARGUMENT"}})
    client = "gemini" if target != "gemini" else "messages"
    path, body = history(client, MODELS[target])
    r = httpx.post(hub.base_url + path, json=body, headers={"authorization": f"Bearer {KEY}", "x-goog-api-key": KEY})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["message"].endswith("(" + target + ", translated) answered 400: bad schema")
    if client == "gemini":
        assert error["status"] == "INVALID_ARGUMENT"
    else:
        assert r.json()["type"] == "error"


@pytest.fixture
def chat_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    """The OpenAI provider as a Chat Completions-only server (`type: openai_compatible`, as for
    vLLM or Ollama), whose mock answers 404 on `/v1/responses` as they do."""
    yield from serve(tmp_path, monkeypatch, chat_only=True)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_responses_client_reaches_a_chat_only_provider(chat_only: Hub, stream: bool) -> None:
    assert ask(chat_only, "responses", GPT, stream) == Reply(f"mock reply from {GPT}", [])
    assert chat_only.sent().path == "/v1/chat/completions"
    assert chat_only.sent().json["messages"][0] == {"role": "system", "content": "be brief"}
    assert chat_only.spent() == CHARGE
    chat_only.upstream.reset()
    chat_only.upstream.ask_tool("get_weather", {"city": "Utrecht"})
    assert ask(chat_only, "responses", GPT, stream, tools=True).calls == [("get_weather", {"city": "Utrecht"})]
    assert chat_only.sent().json["tools"][0]["function"]["parameters"] == WEATHER


def test_codex_runs_the_tool_a_chat_only_model_asks_for(chat_only: Hub, tmp_path: Path) -> None:
    from tests.support.codex import run_codex

    chat_only.upstream.ask_tool("exec_command", {"cmd": "echo hello-from-chat-only"})
    run = run_codex(chat_only.base_url + "/v1", KEY, GPT, "run the command", tmp_path, 120,
                    "--dangerously-bypass-approvals-and-sandbox")
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"mock reply from {GPT}" in run.stdout
    turns = list(chat_only.upstream.requests)
    assert {r.path for r in turns} == {"/v1/chat/completions"} and len(turns) >= 2
    results = [m for m in turns[1].json["messages"] if m["role"] == "tool"]
    assert results and "hello-from-chat-only" in results[0]["content"]


def test_claude_code_reads_the_file_a_gemini_model_asks_for(hub: Hub, tmp_path: Path) -> None:
    from tests.support.claude_code import run_claude

    (tmp_path / "work").mkdir()
    note = tmp_path / "work" / "note.txt"
    note.write_text("hello-from-the-gemini-route\n")
    hub.upstream.ask_tool("Read", {"file_path": str(note)})
    run = run_claude(hub.base_url, KEY, GEMINI, "read note.txt", tmp_path)
    assert run.returncode == 0, run.stderr[-2000:] + run.stdout[-2000:]
    assert f"mock reply from {GEMINI}" in run.stdout
    turns = [r.json for r in hub.upstream.requests if r.path.endswith(":streamGenerateContent")]
    assert len(turns) >= 2
    declared = {d["name"] for t in turns[0]["tools"] for d in t["functionDeclarations"]}
    assert "Read" in declared
    results = [p["functionResponse"] for c in turns[1]["contents"] for p in c["parts"] if "functionResponse" in p]
    assert results and results[0]["name"] == "Read" and "hello-from-the-gemini-route" in json.dumps(results)


def test_codex_runs_the_tool_a_gemini_model_asks_for(hub: Hub, tmp_path: Path) -> None:
    from tests.support.codex import run_codex

    hub.upstream.ask_tool("exec_command", {"cmd": "echo hello-from-gemini"})
    run = run_codex(hub.base_url + "/v1", KEY, GEMINI, "run the command", tmp_path, 120,
                    "--dangerously-bypass-approvals-and-sandbox")
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"mock reply from {GEMINI}" in run.stdout
    turns = [r.json for r in hub.upstream.requests]
    assert len(turns) >= 2 and all(r.path.endswith(":streamGenerateContent") for r in hub.upstream.requests)
    results = [p["functionResponse"] for c in turns[1]["contents"] for p in c["parts"] if "functionResponse" in p]
    assert results and results[0]["name"] == "exec_command" and "hello-from-gemini" in json.dumps(results)
    assert hub.spent() == len(turns) * CHARGE


@pytest.mark.parametrize("target", ["openai", "anthropic"])
def test_the_captured_gemini_cli_request_reaches_another_protocols_model(hub: Hub, target: str) -> None:
    """gemini-cli's own request (its 31 KB system prompt, 8 tools with parametersJsonSchema,
    sampling and thinking settings) on an OpenAI and an Anthropic route, streamed as it asks."""
    from tests.conftest import ROOT

    body = json.loads((ROOT / "tests" / "fixtures" / "gemini-streamGenerateContent-request.json").read_text())
    model = MODELS[target]
    r = httpx.post(hub.base_url + f"/v1beta/models/{model}:streamGenerateContent?alt=sse", json=body,
                   headers={"x-goog-api-key": KEY})
    assert r.status_code == 200, r.text
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]) == f"mock reply from {model}"
    sent = hub.sent().json
    system = sent["messages"][0]["content"] if target == "openai" else sent["system"]
    assert system == body["systemInstruction"]["parts"][0]["text"]
    tools = [t["function"]["name"] for t in sent["tools"]] if target == "openai" else [t["name"] for t in sent["tools"]]
    assert tools == [d["name"] for d in body["tools"][0]["functionDeclarations"]]
    if target == "anthropic":
        assert sent["temperature"] == 1 and "top_p" not in sent
        assert r.headers["x-langwatch-translation-dropped"] == "generationConfig.thinkingConfig,generationConfig.topK,top_p"
    else:
        assert sent["temperature"] == 1 and sent["top_p"] == 0.95
        assert r.headers["x-langwatch-translation-dropped"] == "generationConfig.thinkingConfig,generationConfig.topK"


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_a_responses_stream_the_gateway_ends_with_an_error_conforms_to_the_schema(hub: Hub, model: str) -> None:
    """Native or translated, the error event that ends a broken Responses stream is numbered next
    in the stream's sequence, as OpenAI's schema for it requires."""
    from tests.support.openai_schemas import problems, stream_event

    hub.upstream.fail(die_after=4, times=1)
    r = httpx.post(hub.base_url + "/v1/responses", json={"model": model, "input": "hi", "stream": True},
                   headers={"authorization": f"Bearer {KEY}"})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "error" and "upstream stream failed" in events[-1]["message"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert problems(stream_event("error"), events[-1]) == []


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_gemini_cli_reads_the_file_an_openai_or_anthropic_model_asks_for(hub: Hub, tmp_path: Path, model: str) -> None:
    from tests.support.gemini_cli import run_gemini

    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    (home / "work" / "notes.txt").write_text("the launch code is tangerine\n")
    hub.upstream.ask_tool("read_file", {"file_path": "notes.txt"})
    run = run_gemini(hub.base_url, KEY, model, "what is in notes.txt?", home)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"mock reply from {model}" in run.stdout
    assert run.egress == [], "gemini-cli tried to reach beyond loopback"
    first, second = hub.upstream.requests
    expected = "/v1/chat/completions" if model == GPT else "/v1/messages"
    assert first.path.endswith(expected) and second.path.endswith(expected) and second.json["stream"] is True
    sent = json.dumps(second.json)
    assert "read_file" in sent and "tangerine" in sent
