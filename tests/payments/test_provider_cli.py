"""`lastseat payments serve` as a process: bad input is one line and exit 2; no orphans."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
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


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    return "\nState:\tZ" in status  # exited; only its reaping is left to init


def test_a_throwaway_provider_does_not_outlive_the_process_that_started_it() -> None:
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from lastseat.adapters.payments.server import ThrowawayProvider\n"
            "p = ThrowawayProvider().start()\n"
            "print(p.pid, p.db_path.parent, flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    pid_text, root = starter.stdout.readline().split()
    provider_pid = int(pid_text)
    try:
        assert not _gone(provider_pid)
        starter.kill()  # SIGKILL: no finalizer, no stop() runs in the starter
        starter.wait()
        deadline = time.monotonic() + 10
        while not _gone(provider_pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # polling for the exit, not ordering anything
        assert _gone(provider_pid)
    finally:
        starter.kill()
        starter.wait()
        if not _gone(provider_pid):
            os.kill(provider_pid, signal.SIGKILL)
        shutil.rmtree(root, ignore_errors=True)
