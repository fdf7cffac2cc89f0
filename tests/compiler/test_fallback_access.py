"""GP315: a fallback hop may answer with a model the key cannot request; said once per settings line."""

from __future__ import annotations

import shutil
from pathlib import Path

from compiler import compile_policy
from tests.conftest import EXAMPLES, FIXED_NOW

CASE = EXAMPLES / "broken" / "fallback-beyond-access"


def copy_case(tmp_path: Path) -> Path:
    root = tmp_path / "policy"
    shutil.copytree(CASE, root)
    (root / "EXPECTED").unlink()
    return root


def test_a_profile_hop_is_told_once_with_every_key_it_reaches(tmp_path: Path) -> None:
    found = [d for d in compile_policy(copy_case(tmp_path), now=FIXED_NOW).diagnostics if d.code == "GP315"]
    assert len(found) == 1
    assert "profile 'codex-mini'" in found[0].message and "2 virtual keys (vk-alice-codex, vk-bob-codex)" in found[0].message
    assert "'openai-primary'" in found[0].message and "'gpt-4o'" in found[0].message


def test_a_revoked_key_is_not_counted(tmp_path: Path) -> None:
    root = copy_case(tmp_path)
    keys = root / "vks" / "engineering.yaml"
    keys.write_text(keys.read_text().replace("key_prefix: gp-Bob0Codex\n", "key_prefix: gp-Bob0Codex\n    status: revoked\n"))
    found = [d for d in compile_policy(root, now=FIXED_NOW).diagnostics if d.code == "GP315"]
    assert [d.message.split("which ")[1] for d in found] == ["1 virtual key (vk-alice-codex) may not call by name"]


def test_a_keys_own_hop_names_the_key(tmp_path: Path) -> None:
    root = copy_case(tmp_path)
    profiles = root / "profiles.yaml"
    profiles.write_text(profiles.read_text().split("    fallback:")[0])
    keys = root / "vks" / "engineering.yaml"
    keys.write_text(keys.read_text().replace(
        "    extends: codex-mini\n  vk-bob-codex:",
        "    extends: codex-mini\n    fallback: {on: [5xx], chain: [{provider: openai-primary, model: gpt-4o}]}\n  vk-bob-codex:"))
    found = [d for d in compile_policy(root, now=FIXED_NOW).diagnostics if d.code == "GP315"]
    assert [(d.message, str(d.span)) for d in found] == [
        ("fallback hop 'openai-primary' of virtual key 'vk-alice-codex' answers with 'gpt-4o', which the key may not "
         "call by name", "vks/engineering.yaml:8:35")]


def test_a_hop_the_key_may_call_is_no_warning(tmp_path: Path) -> None:
    root = copy_case(tmp_path)
    profiles = root / "profiles.yaml"
    profiles.write_text(profiles.read_text().replace("[gpt-4o-mini]", "[gpt-4o-mini, gpt-4o]"))
    assert not compile_policy(root, now=FIXED_NOW).diagnostics
