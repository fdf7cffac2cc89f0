"""What the reloader watches: the files the table is loaded from, nothing beside them."""

from __future__ import annotations

import shutil
from pathlib import Path

from cli.sources import source_files
from runtime.ledger.sqlite import SqliteLedger
from runtime.reload import fingerprint
from tests.conftest import EXAMPLES


def test_a_ledger_tests_and_editor_files_beside_the_policy_are_not_a_policy_change(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    shutil.copytree(EXAMPLES / "quickstart", policy)
    seen = fingerprint(policy, source_files)
    ledger = SqliteLedger(policy / ".gatepost")
    ledger.heartbeat()
    ledger.close()
    (policy / "ledger.sqlite3-wal").write_bytes(b"\0" * 64)
    (policy / "policy_test.yaml").write_text("tests: []\n")
    (policy / ".policy.yaml.swp").write_bytes(b"swap")
    (policy / "banner.txt").write_text("edited\n")
    assert fingerprint(policy, source_files) == seen


def test_a_new_changed_or_removed_policy_file_is_a_change(tmp_path: Path) -> None:
    policy = tmp_path / "policy"
    shutil.copytree(EXAMPLES / "quickstart", policy)
    seen = fingerprint(policy, source_files)
    (policy / "more.yml").write_text("models: {}\n")
    added = fingerprint(policy, source_files)
    assert added != seen
    (policy / "more.yml").write_text("models: {o3: {providers: [mock]}}\n")
    assert fingerprint(policy, source_files) != added
    (policy / "more.yml").unlink()
    assert fingerprint(policy, source_files) == seen


def test_an_artifact_source_is_its_one_file(tmp_path: Path) -> None:
    artifact = tmp_path / "routing-table.json"
    artifact.write_text("{}")
    (tmp_path / "ledger.sqlite3").write_bytes(b"x")
    assert [path for path, _, _ in fingerprint(artifact, source_files)] == [str(artifact)]
