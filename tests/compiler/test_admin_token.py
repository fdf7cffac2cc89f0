"""`gateway.admin.token`: a reference to where the admin token is kept, never the token; carried
to the table without changing the revision of tables that have none; weighed by `policy diff`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from compiler import compile_policy, render_json, render_text
from compiler.diff import NARROWS, WIDENS, diff_tables
from tests.compiler.test_diff import artifact, changes_on, edit
from tests.conftest import ACME, FIXED_NOW

GATEWAY = "  header_prefix: X-LangWatch-\n"
TOKEN = "Zq8vN3xR7tL2mK9pW4cB6hJ1"


def acme_with(tmp_path: Path, token: str) -> Path:
    repo = tmp_path / "acme"
    shutil.copytree(ACME, repo)
    edit(repo, "gateway.yaml", GATEWAY, f"{GATEWAY}  admin: {{token: {token}}}\n")
    return repo


@pytest.mark.parametrize(("token", "code"), [(TOKEN, "GP501"), ("hunter2", "GP501"), ("ADMIN_TOKEN", "GP505"),
                                             ('"${ADMIN_TOKEN}"', "GP505"), ('"env:"', "GP505")])
def test_anything_but_a_reference_is_refused_where_it_is_written(tmp_path: Path, token: str, code: str) -> None:
    result = compile_policy(acme_with(tmp_path, token), now=FIXED_NOW)
    [diagnostic] = result.diagnostics
    assert diagnostic.code == code
    assert diagnostic.span is not None
    assert (diagnostic.span.file, diagnostic.span.line, diagnostic.span.col) == ("gateway.yaml", 5, 18)
    if code == "GP501":
        assert token not in render_text(result.diagnostics, result.sources)
        assert token not in render_json(result.diagnostics)


def test_a_reference_reaches_the_table_and_only_a_set_token_is_in_its_json(tmp_path: Path) -> None:
    result = compile_policy(acme_with(tmp_path, "env:GATEPOST_ADMIN_TOKEN"), now=FIXED_NOW)
    assert result.artifact is not None and not result.errors
    assert result.artifact.table.gateway.admin_token == "env:GATEPOST_ADMIN_TOKEN"
    assert artifact(tmp_path / "acme")["table"]["gateway"]["admin_token"] == "env:GATEPOST_ADMIN_TOKEN"
    assert "admin_token" not in artifact(ACME)["table"]["gateway"]


def test_setting_the_token_widens_access_and_removing_it_narrows(tmp_path: Path) -> None:
    with_token = artifact(acme_with(tmp_path, "env:GATEPOST_ADMIN_TOKEN"))
    opened = diff_tables(artifact(ACME), with_token, "main", "HEAD")
    assert changes_on(opened, "gateway") == [
        ("admin token: (none) -> env:GATEPOST_ADMIN_TOKEN (whoever holds it reads the admin API)", WIDENS)]
    closed = diff_tables(with_token, artifact(ACME), "main", "HEAD")
    assert changes_on(closed, "gateway") == [
        ("admin token: env:GATEPOST_ADMIN_TOKEN -> (none) (`policy serve --admin-port` no longer starts)", NARROWS)]
