"""The endpoints the gateway answers itself, without a provider: the models a key may use,
liveness, readiness, metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import orjson

from ..decision import Deny, authenticate
from ..errors import error_headers, openai_error
from ..metrics import Metrics
from ..readiness import Readiness
from ..state import Serving
from .answers import answer
from .asgi import Receive, Scope, Send
from .keys import key_hash
from .routes import Params

JSON = [(b"content-type", b"application/json")]
PROMETHEUS_TEXT = [(b"content-type", b"text/plain; version=0.0.4")]


class AppState(Protocol):
    """What the endpoints read of the app, anew on every request: a reload replaces `serving`."""

    serving: Serving
    readiness: Readiness
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

    async def health(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        await answer(send, self.app.serving, 200, b'{"status":"ok"}', JSON)

    async def ready(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        serving, reasons = self.app.serving, self.app.readiness.reasons()
        if reasons:
            body = orjson.dumps({"status": "not_ready", "reasons": reasons, "revision": serving.table.revision})
            await answer(send, serving, 503, body, JSON)
            return
        await answer(send, serving, 200, orjson.dumps({"status": "ready", "revision": serving.table.revision}), JSON)

    async def metrics(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        await answer(send, self.app.serving, 200, self.app.metrics.render(), PROMETHEUS_TEXT)

    async def root(self, scope: Scope, receive: Receive, send: Send, params: Params) -> None:
        await answer(send, self.app.serving, 200, b'{"service":"gatepost"}', JSON)
