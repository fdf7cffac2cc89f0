"""A minimal Bedrock Runtime for the peer benchmark's bedrock variant: InvokeModel answers one
canned Claude message at once, whatever the signature (checking it would load the machine the
gateway is measured on; tests/support/bedrock.py is the mock that checks).

    bedrock_upstream.py --port 8790 [--parent PID]

With `--parent` it exits once that process is gone, so it never outlives the gateway it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import orjson
from aiohttp import web

ANSWER = orjson.dumps({
    "id": "msg_bench0001", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001",
    "content": [{"type": "text", "text": "Hello from the mock upstream."}], "stop_reason": "end_turn",
    "stop_sequence": None, "usage": {"input_tokens": 12, "output_tokens": 7},
})


async def invoke(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")


async def watch(parent: int) -> None:
    while True:
        await asyncio.sleep(1)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--parent", type=int)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/model/{model_id}/invoke", invoke)
    if args.parent:
        async def start_watch(_: web.Application) -> None:
            asyncio.get_running_loop().create_task(watch(args.parent))
        app.on_startup.append(start_watch)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
