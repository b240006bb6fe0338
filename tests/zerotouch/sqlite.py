"""``database_url`` for test modules whose subject does not depend on the database backend (generated files,
CLI output): SQLite only, imported over conftest's every-backend fixture; the backends are compared elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/autoprov.db"
