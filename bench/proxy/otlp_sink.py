"""A loopback OTLP/HTTP trace receiver for the traced bench targets: accepts `POST /v1/traces`
until the gateway it serves exits (or it is sent SIGTERM/SIGINT), then decodes every batch it
received (as a collector would) and counts their spans.

    python otlp_sink.py PORT PARENT_PID [COUNT_FILE]

It shares a CPU with the load generator, so while the run lasts it only answers and appends each
batch's bytes to a temporary file (length-prefixed: a bounded memory whatever the run's length);
the decoding waits for the end, when it writes the number of spans to COUNT_FILE. It decodes at the
lowest priority (`nice 19`): the peer benchmark starts its next target while it does, and the load
generator of that target shares this CPU.
"""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ANSWER = ExportTraceServiceResponse().SerializeToString()
LENGTH = struct.Struct("<I")


def batches(stored: BinaryIO) -> Iterator[bytes]:
    """The batches' bytes as `main` stored them."""
    while prefix := stored.read(LENGTH.size):
        yield stored.read(LENGTH.unpack(prefix)[0])


def spans_in(stored: BinaryIO) -> int:
    """The spans of every stored batch, each decoded as an ExportTraceServiceRequest."""
    total = 0
    for body in batches(stored):
        batch = ExportTraceServiceRequest()
        batch.ParseFromString(body)
        total += sum(len(s.spans) for r in batch.resource_spans for s in r.scope_spans)
    return total


async def main(port: int, parent: int, count_file: Path | None) -> None:
    stored = tempfile.TemporaryFile()

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        stored.write(LENGTH.pack(len(body)))
        stored.write(body)
        return web.Response(body=ANSWER, content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1)
        except TimeoutError:
            pass
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            break
    await runner.cleanup()
    if count_file is not None:
        os.nice(19)
        stored.seek(0)
        count_file.write_text(f"{spans_in(stored)}\n")
    stored.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]) if len(sys.argv) > 3 else None))
