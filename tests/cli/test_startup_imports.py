"""Start-up stays cheap: `lastseat` loads the web stack, the drivers, the lab and rich only for
the command that needs them (issue 8: `lastseat --help` took ~3.5 s, a restarted server ~7 s,
nearly all of it imports). Checked by what a fresh interpreter has imported, not by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Each is either large or only needed by some commands: the web stack (serve), the database
# drivers and lock-service clients (the store or strategy picked), the lab and rich (race,
# bench, check).
HEAVY = (
    "fastapi",
    "starlette",
    "pydantic",
    "uvicorn",
    "psycopg",
    "psycopg_pool",
    "redis",
    "kazoo",
    "httpx",
    "rich",
    "lastseat.api.app",
    "lastseat.adapters.postgres",
    "lastseat.lab.runner",
    "lastseat.lab.checker",
    "lastseat.client",
)

# Runs the CLI in-process as `python -m lastseat ARGS` does, then prints the heavy modules
# loaded on stderr (stdout carries the command's own output).
_PROBE = """
import json, runpy, sys
sys.argv = ["lastseat", *sys.argv[1:]]
try:
    runpy.run_module("lastseat", run_name="__main__")
except SystemExit:
    pass
heavy = {heavy!r}
print(json.dumps(sorted(m for m in heavy if m in sys.modules)), file=sys.stderr)
"""


def loaded_after(code: str, *args: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running `code` with `args`."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return found


def loaded_by_cli(*args: str) -> list[str]:
    return loaded_after(_PROBE.format(heavy=HEAVY), *args)


def test_importing_the_cli_entry_point_loads_nothing_heavy() -> None:
    code = f"import sys, json; import lastseat.cli.main; {_report()}"

    assert loaded_after(code) == []


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--help"], id="help"),
        pytest.param(["--version"], id="version"),
        pytest.param(["race", "--help"], id="race-help"),
        pytest.param(["check", "--help"], id="check-help"),
        pytest.param(["serve", "--help"], id="serve-help"),
        pytest.param(["bench", "--help"], id="bench-help"),
    ],
)
def test_help_and_version_load_nothing_heavy(args: list[str]) -> None:
    assert loaded_by_cli(*args) == []


def test_the_composition_root_loads_only_the_adapters_it_picks() -> None:
    code = (
        "import sys, json, tempfile, os\n"
        "from lastseat.bootstrap import build, open_store\n"
        "store = open_store(os.path.join(tempfile.mkdtemp(), 'x.db'))\n"
        "build(store, 'atomic')\n"
        "store.close()\n" + _report()
    )

    # A SQLite store with the wallet and a strategy that needs no lock service: no
    # PostgreSQL driver, no Redis or ZooKeeper client, no HTTP client.
    assert loaded_after(code) == []


def test_the_probe_sees_a_heavy_import_when_one_happens() -> None:
    # The control: the same probe, after importing what a race runs, names what it loaded.
    code = f"import sys, json; import lastseat.lab.runner; {_report()}"

    found = loaded_after(code)

    assert "lastseat.lab.runner" in found
    assert "rich" in found


def _report() -> str:
    return f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)), file=sys.stderr)"
