"""Shared fixtures: every test gets its own throwaway database file."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A path for a new SQLite database inside the test's temp dir."""
    return tmp_path / "lastseat.db"
