"""The ledger's default directory: per user, never the current (policy) directory."""

from __future__ import annotations

from pathlib import Path

from runtime.ledger.location import default_data_dir


def test_gatepost_data_wins() -> None:
    assert default_data_dir({"GATEPOST_DATA": "/var/lib/gatepost", "XDG_STATE_HOME": "/s", "HOME": "/h"}) == Path(
        "/var/lib/gatepost")


def test_then_the_xdg_state_directory() -> None:
    assert default_data_dir({"GATEPOST_DATA": "", "XDG_STATE_HOME": "/s", "HOME": "/h"}) == Path("/s/gatepost")


def test_then_the_home_state_directory_and_a_relative_xdg_path_is_ignored() -> None:
    assert default_data_dir({"XDG_STATE_HOME": "state", "HOME": "/h"}) == Path("/h/.local/state/gatepost")
    assert default_data_dir({"HOME": "/h"}).is_absolute()
