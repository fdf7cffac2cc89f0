"""A reload lets go of the table it replaces without stalling requests: the old table is taken
apart a piece per loop turn, and only once the last request that read it has ended; a policy
directory reloaded by `policy serve` is compiled in a child process, its diagnostics reported whole."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import httpx
import pytest

import cli.sources
from cli.errors import PolicyError
from cli.sources import ServeLoader, load_source, source_files
from compiler import CompileResult
from runtime.access_log import EventLog
from runtime.reload import Reloader
from runtime.table import LoadedTable
from tests.e2e.conftest import UPSTREAM_OPENAI_SECRET, policy_text
from tests.e2e.reload_tables import AUTH, CHAT, served_and_next
from tests.support.apps import app_from
from tests.support.servers import served_in_this_loop
from tests.support.upstream import MockUpstream

pytestmark = pytest.mark.e2e

def whole(table: LoadedTable) -> bool:
    return bool(table.keys) and bool(table.keys_by_hash) and bool(table.providers) and bool(table.models)


def test_the_replaced_table_is_taken_apart_after_its_last_request_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_OPENAI_KEY", UPSTREAM_OPENAI_SECRET)
    monkeypatch.setenv("E2E_AZURE_KEY", "unused")
    with MockUpstream() as upstream:
        served, following = served_and_next(tmp_path, upstream.base_url)
        upstream.fail(hold_after=1, path_contains="chat", times=1)

        async def scenario() -> tuple[list[str], list[str], bool, bool, LoadedTable]:
            app = app_from(served)
            old = app.serving.table
            reloader = Reloader(app, served, load_source, source_files, EventLog(io.StringIO()), retire_grace_s=0,
                                release_grace_s=0, release_poll_s=0)
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
                                assert await reloader.reload("test")
                                after = await http.post(url, json=CHAT, headers=AUTH)
                                assert after.status_code == 200
                                revisions.append(after.headers["x-langwatch-policy-revision"])
                                for _ in range(20):
                                    await asyncio.sleep(0)
                                whole_during_stream = whole(old) and bool(reloader.releasing)
                                upstream.release()
                    await asyncio.gather(*reloader.releasing)
                    still_serves = (await http.post(url, json=CHAT, headers=AUTH)).status_code == 200
            return lines, revisions, whole_during_stream, still_serves, old

        lines, revisions, whole_during_stream, still_serves, old = asyncio.run(scenario())
    data = [line for line in lines if line.startswith("data:")]
    assert data[-1] == "data: [DONE]" and not any('"error"' in line for line in data)
    assert revisions[0] != revisions[1], "the stream began on the old table, the next request on the new one"
    assert whole_during_stream, "the old table was taken apart while a stream that read it was in flight"
    assert not old.keys and not old.keys_by_hash and not old.providers and not old.budgets
    assert still_serves


def test_policy_serve_compiles_a_reloaded_directory_in_another_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    text = policy_text("http://127.0.0.1:9")
    (policy / "policy.yaml").write_text(text)
    load = ServeLoader()
    first = load(policy)

    def not_here(source: Path) -> CompileResult:
        raise AssertionError("a reload compiled in the serving process")

    monkeypatch.setattr(cli.sources, "compile_policy", not_here)
    (policy / "policy.yaml").write_text(text.replace("input: 2.50", "input: 2.75"))
    second = load(policy)
    assert second.revision != first.revision and set(second.keys) == set(first.keys)
    monkeypatch.undo()

    (policy / "policy.yaml").write_text(text.replace("extends: codex-default", "extends: codex-defualt", 1))
    with pytest.raises(PolicyError) as in_process:
        load_source(policy)
    monkeypatch.setattr(cli.sources, "compile_policy", not_here)
    with pytest.raises(PolicyError) as apart:
        load(policy)
    assert apart.value.report == in_process.value.report
    assert "policy.yaml:" in apart.value.report and "GP203" in apart.value.report


def test_a_reload_lists_the_policy_files_off_the_serving_loop(tmp_path: Path) -> None:
    """Listing and statting the files of a policy directory (what a reload remembers as seen) took
    10-20 ms of the serving loop for a 50k-key repository's 500 files; it runs in a thread."""
    policy = tmp_path / "policy"
    policy.mkdir()
    text = policy_text("http://127.0.0.1:9")
    (policy / "policy.yaml").write_text(text)
    listed_on_the_loop: list[bool] = []

    def files(source: Path) -> list[Path]:
        try:
            asyncio.get_running_loop()
            listed_on_the_loop.append(True)
        except RuntimeError:
            listed_on_the_loop.append(False)
        return source_files(source)

    async def scenario() -> None:
        app = app_from(policy)
        reloader = Reloader(app, policy, load_source, files, EventLog(io.StringIO()), retire_grace_s=0,
                            release_grace_s=0, release_poll_s=0)
        listed_on_the_loop.clear()
        (policy / "policy.yaml").write_text(text.replace("input: 2.50", "input: 2.75"))
        assert await reloader.reload("test")

    asyncio.run(scenario())
    assert listed_on_the_loop == [False]
