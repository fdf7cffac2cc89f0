"""A loopback mock of Vertex AI and of Google's OAuth token endpoint.

The test makes an RSA key pair and a service-account key file holding its private half, with
this mock's `/token` as its `token_uri`. The token endpoint checks the JWT bearer assertion the
way Google does: RS256 over `header.payload`, verified with the public half, issued by the
account's email, for Google's token audience, for the cloud-platform scope, not expired; it answers an
access token with `expires_in`. Model endpoints take only a token it issued and has not expired,
and serve Claude (`rawPredict`, `streamRawPredict`) and Gemini (`generateContent`,
`streamGenerateContent`) under `/v1/projects/{project}/locations/{location}/publishers/...`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support import claude_answers
from tests.support.servers import ServerThread

TEST_PROJECT = "acme-ml"
TEST_LOCATION = "us-east5"
CLIENT_EMAIL = "gatepost@acme-ml.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://oauth2.googleapis.com/token"
"""The assertion's `aud`: Google's token endpoint, whichever `token_uri` the key file names."""


def key_pair() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account_file(private_key: rsa.RSAPrivateKey, token_uri: str) -> str:
    """A service-account key file (the JSON Google Cloud hands out) for `private_key`."""
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return json.dumps({
        "type": "service_account", "project_id": TEST_PROJECT, "private_key_id": secrets.token_hex(20),
        "private_key": pem, "client_email": CLIENT_EMAIL, "client_id": "1234567890",
        "token_uri": token_uri, "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    })


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class Received:
    publisher: str
    model: str
    method: str
    query: str
    body: dict[str, Any]


@dataclass
class MockVertex:
    public_key: rsa.RSAPublicKey
    project: str = TEST_PROJECT
    location: str = TEST_LOCATION
    expires_in: int = 3600
    refuse_tokens: bool = False
    """Answer the token endpoint `invalid_grant`, as Google does for a deleted key."""
    requests: list[Received] = field(default_factory=list)
    token_requests: int = 0
    refused: list[str] = field(default_factory=list)
    """Why each refused request was refused: `bad_assertion`, `unauthenticated`, `invalid_body`."""
    _tokens: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        app = Starlette(routes=[
            Route("/token", self._token, methods=["POST"]),
            Route("/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}",
                  self._predict, methods=["POST"]),
        ])
        self._server = ServerThread(app)
        self.base_url = self._server.base_url
        self.token_uri = self.base_url + "/token"

    def __enter__(self) -> MockVertex:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    async def _token(self, request: Request) -> Response:
        form = parse_qs((await request.body()).decode())
        with self._lock:
            self.token_requests += 1
        problem = self._assertion_problem(form)
        if problem is not None or self.refuse_tokens:
            self.refused.append("bad_assertion")
            return JSONResponse({"error": "invalid_grant", "error_description": problem or "Invalid grant: account not found"},
                                status_code=400)
        token = "ya29.mock-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = time.time() + self.expires_in
        return JSONResponse({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def _assertion_problem(self, form: dict[str, list[str]]) -> str | None:
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return "Invalid grant_type"
        try:
            header_part, payload_part, signature_part = form["assertion"][0].split(".")
            header, claims = json.loads(_b64(header_part)), json.loads(_b64(payload_part))
            self.public_key.verify(_b64(signature_part), f"{header_part}.{payload_part}".encode(),
                                   padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            return "Invalid JWT Signature."
        now = time.time()
        if header.get("alg") != "RS256":
            return "Invalid JWT: alg must be RS256"
        if claims.get("iss") != CLIENT_EMAIL or claims.get("aud") != AUDIENCE:
            return "Invalid JWT: Failed audience or issuer check"
        if SCOPE not in str(claims.get("scope", "")).split():
            return "Invalid JWT: no cloud-platform scope"
        if not claims.get("iat", now + 1) <= now + 60 < claims.get("exp", 0) + 60:
            return "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe"
        return None

    def _bearer_valid(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            expiry = self._tokens.get(token)
        return scheme == "Bearer" and expiry is not None and expiry > time.time()

    async def _predict(self, request: Request) -> Response:
        if not self._bearer_valid(request):
            self.refused.append("unauthenticated")
            return JSONResponse({"error": {"code": 401, "status": "UNAUTHENTICATED", "message":
                                           "Request had invalid authentication credentials. Expected OAuth 2 access token"}},
                                status_code=401)
        params = request.path_params
        if (params["project"], params["location"]) != (self.project, self.location):
            return JSONResponse({"error": {"code": 404, "status": "NOT_FOUND", "message": "project or location not found"}},
                                status_code=404)
        model, _, method = params["target"].partition(":")
        body = json.loads(await request.body())
        problem = _body_problem(params["publisher"], method, body)
        if problem is not None:
            self.refused.append("invalid_body")
            return JSONResponse({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": problem}}, status_code=400)
        query = request.scope["query_string"].decode()
        self.requests.append(Received(params["publisher"], model, method, query, body))
        if params["publisher"] == "anthropic":
            answer = claude_answers.message(model, f"mock reply from vertex {model}")
            if method == "rawPredict":
                return JSONResponse(answer)
            events = claude_answers.stream_events(answer)
            return _stream([f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events], "text/event-stream")
        return _gemini(model, method, query)


def _body_problem(publisher: str, method: str, body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    if publisher == "anthropic":
        if method not in ("rawPredict", "streamRawPredict"):
            return f"Unknown method {method}"
        if body.get("anthropic_version") != "vertex-2023-10-16":
            return "anthropic_version: vertex-2023-10-16 is required"
        if "model" in body:
            return "model: Extra inputs are not permitted"
        if method == "streamRawPredict" and body.get("stream") is not True:
            return "streamRawPredict needs stream: true"
        if not isinstance(body.get("messages"), list) or not isinstance(body.get("max_tokens"), int):
            return "messages and max_tokens are required"
        return None
    if method not in ("generateContent", "streamGenerateContent"):
        return f"Unknown method {method}"
    if not isinstance(body.get("contents"), list):
        return "contents is required"
    return None


def _gemini(model: str, method: str, query: str) -> Response:
    usage = {"promptTokenCount": 11, "candidatesTokenCount": 5, "totalTokenCount": 16}
    words = f"mock reply from vertex {model}".split(" ")
    if method == "generateContent":
        return JSONResponse({"candidates": [{"content": {"role": "model", "parts": [{"text": " ".join(words)}]},
                                             "finishReason": "STOP", "index": 0}],
                             "usageMetadata": usage, "modelVersion": model})
    chunks: list[dict[str, Any]] = []
    for i, word in enumerate(words):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": word + " " * (i < len(words) - 1)}]},
                                     "index": 0}
        chunk: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
        if i == len(words) - 1:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = usage
        chunks.append(chunk)
    if "alt=sse" in query:
        return _stream([f"data: {json.dumps(c)}\r\n\r\n" for c in chunks], "text/event-stream")
    return _stream(["[" + ",\r\n".join(json.dumps(c) for c in chunks) + "]"], "application/json")


def _stream(parts: list[str], media_type: str) -> StreamingResponse:
    async def send() -> Any:
        for part in parts:
            yield part.encode()

    return StreamingResponse(send(), media_type=media_type)
