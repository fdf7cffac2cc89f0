"""The endpoints the gateway answers itself, without a provider: the models a key may use, token
counts, liveness, readiness, metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import orjson

from ..decision import Deny, authenticate, decide_for_key
from ..errors import error_headers, openai_error
from ..exceptions import BodyCutShort
from ..metrics import Metrics
from ..state import Serving
from ..surfaces import Surface
from .answers import answer, refuse
from .asgi import Receive, Scope, Send
from .keys import key_hash
from .payload import read_payload
from .routes import Params

JSON = [(b"content-type", b"application/json")]
PROMETHEUS_TEXT = [(b"content-type", b"text/plain; version=0.0.4")]


class AppState(Protocol):
    """What the endpoints read of the app, anew on every request: a reload replaces `serving`."""

    serving: Serving
    ready: bool
    metrics: Metrics


class Endpoints:
    def __init__(self, app: AppState) -> None:
        self.app = app

    async def models(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        serving = self.app.serving
        key = authenticate(serving.table, key_hash(scope), datetime.now(UTC))
        if isinstance(key, Deny):
            body = openai_error(key.status, key.code, key.message)
            await answer(send, serving, key.status, body, error_headers(key.status))
            return
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": route.targets[0].provider if route.targets else "gatepost"}
            for name, route in sorted(key.routes.items())
        ]
        await answer(send, serving, 200, orjson.dumps({"object": "list", "data": data}), JSON)

    async def count_tokens(self, surface: Surface, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        """An estimate (a token per four bytes of the prompt's JSON), so a client's context
        accounting works without a round trip to the provider: Anthropic's `count_tokens` and
        Gemini's `countTokens`, each decided (key, model) like a real request."""
        serving = self.app.serving
        key = authenticate(serving.table, key_hash(scope), datetime.now(UTC))
        if isinstance(key, Deny):
            await refuse(send, serving, surface, key)
            return
        try:
            read = await read_payload(scope, receive, serving.table.gateway.max_body_bytes, key)
        except BodyCutShort:
            return
        if isinstance(read, Deny):
            await refuse(send, serving, surface, read)
            return
        payload = read[1]
        gemini_model = params[0] if params is not None else None
        model = gemini_model if gemini_model is not None else payload.get("model")
        decision = decide_for_key(key, surface.name, model if isinstance(model, str) else None)
        if isinstance(decision, Deny):
            await refuse(send, serving, surface, decision)
            return
        if gemini_model is not None:
            request = payload.get("generateContentRequest")
            source = request if isinstance(request, dict) else payload
            counted = {k: source.get(k) for k in ("contents", "systemInstruction", "tools")}
            body = orjson.dumps({"totalTokens": max(1, len(orjson.dumps(counted)) // 4)})
        else:
            counted = {k: payload.get(k) for k in ("system", "messages", "tools")}
            body = orjson.dumps({"input_tokens": max(1, len(orjson.dumps(counted)) // 4)})
        await answer(send, serving, 200, body, JSON)

    async def health(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        await answer(send, self.app.serving, 200, b'{"status":"ok"}', JSON)

    async def ready(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        serving, ready = self.app.serving, self.app.ready
        body = orjson.dumps({"status": "ready" if ready else "starting", "revision": serving.table.revision})
        await answer(send, serving, 200 if ready else 503, body, JSON)

    async def metrics(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        await answer(send, self.app.serving, 200, self.app.metrics.render(), PROMETHEUS_TEXT)

    async def root(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        await answer(send, self.app.serving, 200, b'{"service":"gatepost"}', JSON)
