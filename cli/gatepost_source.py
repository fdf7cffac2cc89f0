"""Where a policy repository installs Gatepost from: one git repository and revision, shared by the
CI workflow (`pip install "gatepost @ git+URL@REV"`) and the pre-commit hooks (`repo:`/`rev:`).

Installing by a bare package name would run whatever an index serves under that name, with the
workflow's write permissions; a git URL and a pinned revision name exactly the reviewed code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPOSITORY_URL = "https://github.com/gatepost-dev/gatepost"
RELEASE_REV = "v0.1.0"


@dataclass(frozen=True)
class GatepostSource:
    url: str
    rev: str

    @property
    def pip_requirement(self) -> str:
        """A PEP 508 direct reference to the same repository and revision the pre-commit hooks use."""
        url = self.url
        if "://" not in url and not url.startswith("git@"):
            url = Path(url).resolve().as_uri()
        return f"gatepost @ git+{url}@{self.rev}"

    @property
    def pip_install(self) -> str:
        return f'pip install "{self.pip_requirement}"'
