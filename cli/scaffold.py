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
    files: list[Path]
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


def scaffold(target: Path, principal: str, gatepost: GatepostSource) -> Scaffolded:
    """Write the starter repository into target (which must be empty or absent); its CI workflow and
    pre-commit hooks install Gatepost from `gatepost`."""
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
    written = []
    for rel, text in _walk(resources.files("cli").joinpath(TEMPLATE)):
        for marker, value in values.items():
            rel = rel.replace(marker, value)
            text = text.replace(marker, value)
        path = target / rel
        text = text.replace(SCHEMA_URL, "../" * rel.count("/") + SCHEMA_DIR + "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return Scaffolded(written, vk_id, key)
