"""`policy init`: a starter policy repository from the templates shipped with the package."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

from .gatepost_source import GatepostSource
from .keys import key_prefix, key_sha256, new_key

TEMPLATE = "templates/init"
SCHEMA_URL = "https://gatepost.dev/schemas/"
SCHEMA_DIR = ".schemas"


@dataclass(frozen=True)
class Scaffolded:
    files: dict[Path, str]  # relative to the repository's root
    vk_id: str
    key: str


def _walk(node: Traversable, rel: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        path = f"{rel}{child.name}"
        if child.is_dir():
            found += _walk(child, path + "/")
        elif child.name != "__init__.py":
            found.append((path, child.read_text()))
    return found


def render(principal: str, gatepost: GatepostSource) -> Scaffolded:
    """The starter repository's files, relative to its root, and the starter key; nothing is
    written. Its CI workflow and pre-commit hooks install Gatepost from `gatepost`."""
    key = new_key()
    handle = principal.split("@")[0].replace(".", "-").lower() or "you"
    vk_id = f"vk-{handle}-codex"
    values = {
        "@@PRINCIPAL@@": principal,
        "@@VK_ID@@": vk_id,
        "@@KEY_FILE@@": handle,
        "@@KEY_SHA256@@": key_sha256(key),
        "@@KEY_PREFIX@@": key_prefix(key),
        "@@GATEPOST_PIP_INSTALL@@": gatepost.pip_install,
        "@@GATEPOST_URL@@": gatepost.url,
        "@@GATEPOST_REV@@": gatepost.rev,
    }
    files: dict[Path, str] = {}
    for rel, text in _walk(resources.files("cli").joinpath(TEMPLATE)):
        for marker, value in values.items():
            rel = rel.replace(marker, value)
            text = text.replace(marker, value)
        files[Path(rel)] = text.replace(SCHEMA_URL, "../" * rel.count("/") + SCHEMA_DIR + "/")
    return Scaffolded(files, vk_id, key)


def write(target: Path, files: dict[Path, str]) -> list[Path]:
    written = []
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


def blockers(target: Path, files: dict[Path, str]) -> list[Path]:
    """Why target cannot take the starter: entries that are not dot-entries (a directory holding
    only `.git`, `.github` or `.venv` is as good as empty), and files the starter would overwrite."""
    if not target.exists():
        return []
    found = [entry for entry in sorted(target.iterdir()) if not entry.name.startswith(".")]
    return found + [target / rel for rel in files if (target / rel).exists()]
