"""`lastseat payments serve` with bad input: one line on stderr, exit 2, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LASTSEAT = [sys.executable, "-m", "lastseat"]


@pytest.mark.parametrize(
    ("args", "api_key"),
    [
        (["--decline-rate", "2"], "a-good-api-key"),
        (["--slow-rate", "-0.1"], "a-good-api-key"),
        (["--port", "0"], "a-good-api-key"),
        (["--latency-ms", "soon"], "a-good-api-key"),
        (["--outage-mode", "fire"], "a-good-api-key"),
        (["--bogus-flag"], "a-good-api-key"),
        ([], ""),  # no api key at all
        ([], "short"),
        (["--db", "/nonexistent-dir/provider.db"], "a-good-api-key"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, args: list[str], api_key: str) -> None:
    db = ["--db", str(tmp_path / "provider.db")] if "--db" not in args else []
    env = {k: v for k, v in os.environ.items() if k != "LASTSEAT_PROVIDER_API_KEY"}
    if api_key:
        env["LASTSEAT_PROVIDER_API_KEY"] = api_key
    done = subprocess.run(
        [*LASTSEAT, "payments", "serve", *db, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("lastseat: error: ")
    assert not (tmp_path / "provider.db").exists() or args == []
