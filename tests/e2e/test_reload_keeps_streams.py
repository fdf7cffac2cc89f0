"""A reload loads and verifies the new table off the serving loop: a stream in flight keeps getting
its events while the load is under way, and the swap comes after."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path

import httpx
import pytest

from cli.sources import load_source, source_files
from runtime.access_log import EventLog
from runtime.reload import Reloader
from runtime.table import LoadedTable
from tests.e2e.conftest import UPSTREAM_OPENAI_SECRET
from tests.e2e.reload_tables import AUTH, CHAT, served_and_next
from tests.support.apps import app_from
from tests.support.servers import served_in_this_loop
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e

def test_a_stream_keeps_flowing_while_a_reload_loads_the_new_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_OPENAI_KEY", UPSTREAM_OPENAI_SECRET)
    monkeypatch.setenv("E2E_AZURE_KEY", "unused")
    with MockUpstream() as upstream:
        served, following = served_and_next(tmp_path, upstream.base_url)
        upstream.fail(hold_after=1, path_contains="chat", times=1)
        loading, may_finish = threading.Event(), threading.Event()

        def gated_load(source: Path) -> LoadedTable:
            """The load, held open until the stream has ended: a load that stalled the loop would
            keep the stream from ending, and this test from getting past it."""
            loading.set()
            assert may_finish.wait(30), "the stream did not end while the reload was loading"
            return load_source(source)

        async def scenario() -> tuple[list[str], list[str], bool]:
            app = app_from(served)
            reloader = Reloader(app, served, gated_load, source_files, EventLog(io.StringIO()), retire_grace_s=0)
            async with served_in_this_loop(app) as base:
                url = base + "/v1/chat/completions"
                lines: list[str] = []
                revisions: list[str] = []
                async with httpx.AsyncClient(timeout=30) as http:
                    async with http.stream("POST", url, json={**CHAT, "stream": True}, headers=AUTH) as r:
                        revisions.append(r.headers["x-langwatch-policy-revision"])
                        async for line in r.aiter_lines():
                            lines.append(line)
                            if len(lines) == 2:
                                os.replace(following, served)
                                reload = asyncio.create_task(reloader.reload("test"))
                                await asyncio.to_thread(loading.wait, 30)
                                upstream.release()
                    swapped_during_stream = reload.done()
                    may_finish.set()
                    assert await reload
                    after = await http.post(url, json=CHAT, headers=AUTH)
                    revisions.append(after.headers["x-langwatch-policy-revision"])
            return lines, revisions, swapped_during_stream

        lines, revisions, swapped_during_stream = asyncio.run(scenario())
    data = [line for line in lines if line.startswith("data:")]
    assert data[-1] == "data: [DONE]" and not any('"error"' in line for line in data)
    assert not swapped_during_stream, "the stream ended while the new table was still loading"
    assert revisions[0] != revisions[1], "the stream began on the old table, the next request on the new one"
