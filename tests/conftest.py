"""Suite-wide isolation: no test writes raftctl state into the real home directory.

The webhook sink spools undelivered events under ``$XDG_STATE_HOME/raftctl`` by default; each
test gets its own directory (subprocesses inherit it through the environment).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("xdg-state")))
