"""A loopback mock of Bedrock Runtime that checks what the real service checks.

Every request's SigV4 signature is computed again with botocore from the known test keys, over
the path, the headers the request says it signed and the body as they arrived; a wrong one is
refused with 403 in AWS's shape (`x-amzn-ErrorType` and `{"message"}`), as are an unknown access
key, a missing session token and a stale date. The path, method and headers are checked against
botocore's own `bedrock-runtime` service model (InvokeModel and InvokeModelWithResponseStream);
the body, a blob to the service model, is checked as the Anthropic Messages JSON Bedrock expects.
Answers are Claude's: a Messages JSON body, or real event-stream frames (`chunk` events carrying
base64 stream events).
"""

from __future__ import annotations

import datetime
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.support import claude_answers, eventstream
from tests.support.servers import ServerThread

SERVICE_MODEL = get_session().get_service_model("bedrock-runtime")
OPERATIONS = {"invoke": "InvokeModel", "invoke-with-response-stream": "InvokeModelWithResponseStream"}
AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})"
)
MESSAGES_FIELDS = frozenset({
    "anthropic_version", "anthropic_beta", "max_tokens", "messages", "system", "temperature", "top_p", "top_k",
    "stop_sequences", "tools", "tool_choice", "thinking", "metadata",
})
BETA_FIELDS = {"context_management": "context-management-2025-06-27"}
"""Body fields Bedrock takes only with their beta flag in `anthropic_beta`."""
DOCUMENTED_BETAS = frozenset({
    "computer-use-2024-10-22", "computer-use-2025-01-24", "token-efficient-tools-2025-02-19",
    "interleaved-thinking-2025-05-14", "output-128k-2025-02-19", "dev-full-thinking-2025-05-14",
    "context-1m-2025-08-07", "context-management-2025-06-27", "effort-2025-11-24",
    "tool-search-tool-2025-10-19", "tool-examples-2025-10-29",
})
EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"
MAX_SKEW = datetime.timedelta(minutes=5)
TEST_REGION = "us-east-1"
TEST_ACCESS_KEY_ID = "GATEPOSTTESTKEYID001"
TEST_SECRET_ACCESS_KEY = "gatepost-test-secret-access-key-0123456789"
TEST_SESSION_TOKEN = "gatepost-test-session-token-FwoGZXIvYXdzEJr"


@dataclass
class Received:
    operation: str
    model_id: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class MockBedrock:
    access_key_id: str = TEST_ACCESS_KEY_ID
    secret_access_key: str = TEST_SECRET_ACCESS_KEY
    session_token: str | None = None
    region: str = TEST_REGION
    requests: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """The AWS error type of each request refused before it reached a model."""
    failures: list[tuple[int, str]] = field(default_factory=list)
    """(status, AWS error type) answered to the next requests instead of Claude, one each."""
    stream_exception: str | None = None
    """Send this exception frame after the first events of the next stream."""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        app = Starlette(routes=[Route("/model/{model_id}/{action}", self._invoke, methods=["POST"])])
        self._server = ServerThread(app)
        self.base_url = self._server.base_url

    def __enter__(self) -> MockBedrock:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    def fail(self, status: int, error_type: str, times: int = 1) -> None:
        with self._lock:
            self.failures += [(status, error_type)] * times

    async def _invoke(self, request: Request) -> Response:
        body = await request.body()
        raw_path = request.scope["raw_path"].decode()
        refusal = self._signature_problem(request, raw_path, body)
        if refusal is not None:
            self.refused.append(refusal[0])
            return _error(403, *refusal)
        action = request.path_params["action"]
        operation = OPERATIONS.get(action)
        if operation is None:
            return _error(404, "UnknownOperationException", "")
        problem = _against_service_model(operation, request, raw_path) or _messages_problem(body)
        if problem is not None:
            self.refused.append("ValidationException")
            return _error(400, "ValidationException", problem)
        model_id = request.path_params["model_id"]
        self.requests.append(Received(operation, model_id, dict(request.headers), json.loads(body)))
        with self._lock:
            failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            return _error(failure[0], failure[1], f"mock {failure[1]}")
        answer = claude_answers.message(model_id, f"mock reply from bedrock {model_id}")
        if operation == "InvokeModel":
            return Response(json.dumps(answer), media_type="application/json",
                            headers={"x-amzn-bedrock-input-token-count": str(claude_answers.INPUT_TOKENS)})
        events = claude_answers.stream_events(answer)
        events[-1]["amazon-bedrock-invocationMetrics"] = {
            "inputTokenCount": claude_answers.INPUT_TOKENS, "outputTokenCount": claude_answers.OUTPUT_TOKENS,
            "invocationLatency": 12, "firstByteLatency": 5,
        }
        exception, self.stream_exception = self.stream_exception, None
        frames = [eventstream.chunk(event) for event in events]
        if exception is not None:
            frames = [*frames[:3], eventstream.exception(exception, "mock failure mid-stream")]

        async def send() -> Any:
            for frame in frames:
                yield frame

        return StreamingResponse(send(), media_type=EVENT_STREAM_TYPE)

    def _signature_problem(self, request: Request, raw_path: str, body: bytes) -> tuple[str, str] | None:
        found = AUTHORIZATION.fullmatch(request.headers.get("authorization", ""))
        if found is None:
            return "MissingAuthenticationTokenException", "Missing Authentication Token"
        if found["key"] != self.access_key_id:
            return "UnrecognizedClientException", "The security token included in the request is invalid."
        if self.session_token is not None and request.headers.get("x-amz-security-token") != self.session_token:
            return "UnrecognizedClientException", "The security token included in the request is invalid."
        amz_date = request.headers.get("x-amz-date", "")
        try:
            signed_at = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        except ValueError:
            return "IncompleteSignatureException", "X-Amz-Date is missing or malformed"
        if abs(datetime.datetime.now(datetime.UTC) - signed_at) > MAX_SKEW:
            return "InvalidSignatureException", "Signature expired"
        if (found["region"], found["service"], found["date"]) != (self.region, "bedrock", amz_date[:8]):
            return "InvalidSignatureException", "Credential should be scoped to a valid region and service"
        signed = found["signed"].split(";")
        if "host" not in signed or any(name not in request.headers for name in signed):
            return "IncompleteSignatureException", "Signed headers are missing from the request"
        query = request.scope["query_string"].decode()
        url = f"http://{request.headers['host']}{raw_path}" + (f"?{query}" if query else "")
        again = AWSRequest(method=request.method, url=url, data=body,
                           headers={name: request.headers[name] for name in signed})
        again.context["timestamp"] = amz_date
        auth = SigV4Auth(Credentials(self.access_key_id, self.secret_access_key, self.session_token), "bedrock", self.region)
        canonical = auth.canonical_request(again)
        if auth.signed_headers(auth.headers_to_sign(again)) != found["signed"]:
            return "InvalidSignatureException", "The signed headers are not the ones this request needs signed"
        if auth.signature(auth.string_to_sign(again, canonical), again) != found["signature"]:
            return ("InvalidSignatureException",
                    "The request signature we calculated does not match the signature you provided. Check your "
                    "AWS Secret Access Key and signing method. Consult the service documentation for details.")
        return None


def _against_service_model(operation: str, request: Request, raw_path: str) -> str | None:
    """The request's method, path and headers, as the operation's input shape defines them."""
    model = SERVICE_MODEL.operation_model(operation)
    if request.method != model.http["method"]:
        return f"{operation} is {model.http['method']}, not {request.method}"
    template = re.escape(model.http["requestUri"]).replace(re.escape("{modelId}"), "(?P<modelId>[^/]+)")
    path = re.fullmatch(template, raw_path)
    if path is None:
        return f"{raw_path} is not {model.http['requestUri']}"
    values: dict[str, str] = {}
    for name, shape in model.input_shape.members.items():
        where = shape.serialization.get("location")
        if where == "uri":
            values[name] = unquote(path[shape.serialization["name"]])
        elif where == "header" and shape.serialization["name"].lower() in request.headers:
            values[name] = request.headers[shape.serialization["name"].lower()]
    for name in model.input_shape.required_members:
        if name != "body" and name not in values:
            return f"1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
    for name, value in values.items():
        shape = model.input_shape.members[name]
        meta = shape.metadata
        if ("min" in meta and len(value) < meta["min"]) or ("max" in meta and len(value) > meta["max"]):
            return f"1 validation error detected: Value at '{name}' failed to satisfy constraint: Member must have length between {meta.get('min')} and {meta.get('max')}"
        if "pattern" in meta and re.match(meta["pattern"], value) is None:
            return f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: Member must satisfy regular expression pattern: {meta['pattern']}"
        if "enum" in meta and value not in meta["enum"]:
            return f"1 validation error detected: Value '{value}' at '{name}' failed to satisfy enum value set: {meta['enum']}"
    return None


def _messages_problem(body: bytes) -> str | None:
    """What Bedrock's Anthropic models refuse in an InvokeModel body, in their words."""
    try:
        payload = json.loads(body)
    except ValueError:
        return "Malformed input request: the body is not JSON"
    if not isinstance(payload, dict):
        return "Malformed input request: expected type: JSONObject"
    betas = payload.get("anthropic_beta", [])
    if not isinstance(betas, list) or any(beta not in DOCUMENTED_BETAS for beta in betas):
        return f"invalid beta flag in anthropic_beta: {betas}"
    extra = sorted(set(payload) - MESSAGES_FIELDS - {f for f, beta in BETA_FIELDS.items() if beta in betas})
    if extra:
        return f"Malformed input request: #: extraneous key [{extra[0]}] is not permitted, please reformat your input and try again."
    if payload.get("anthropic_version") != "bedrock-2023-05-31":
        return "Malformed input request: #: required key [anthropic_version] not found or invalid"
    if not isinstance(payload.get("max_tokens"), int) or payload["max_tokens"] < 1:
        return "Malformed input request: #: required key [max_tokens] not found"
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Malformed input request: #: required key [messages] not found"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return "Malformed input request: #/messages: each message needs a role of user or assistant"
        if not isinstance(message.get("content"), str | list):
            return "Malformed input request: #/messages: each message needs content"
    return None


def _error(status: int, error_type: str, message: str) -> Response:
    return Response(json.dumps({"message": message}), status_code=status, media_type="application/json",
                    headers={"x-amzn-errortype": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"})
