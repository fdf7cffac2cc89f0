"""A loopback OTLP/HTTP trace receiver for the traced bench targets: accepts `POST /v1/traces`,
decodes each batch (as a collector would) and counts its spans, until the gateway it serves exits.

    python otlp_sink.py PORT PARENT_PID [COUNT_FILE]

It writes the spans received so far to COUNT_FILE every second, so a run can check that the
traced target's spans arrived.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ANSWER = ExportTraceServiceResponse().SerializeToString()


async def main(port: int, parent: int, count_file: Path | None) -> None:
    spans = 0

    async def traces(request: web.Request) -> web.Response:
        nonlocal spans
        batch = ExportTraceServiceRequest()
        batch.ParseFromString(await request.read())
        spans += sum(len(s.spans) for r in batch.resource_spans for s in r.scope_spans)
        return web.Response(body=ANSWER, content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    while True:
        await asyncio.sleep(1)
        if count_file is not None:
            count_file.write_text(f"{spans}\n")
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None))
