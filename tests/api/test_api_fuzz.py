"""A schemathesis pass with every check against a live `lastseat serve`, as its CLI runs it.

All phases (examples, coverage, fuzzing, stateful) and all checks: no 5xx, statuses, content
types, headers and bodies as documented, schema-valid requests accepted (`positive_data_
acceptance`: never a 400 or 422), schema-breaking ones refused (`negative_data_rejection`),
undeclared methods answered 405 with an `Allow` header that names the path's methods, missing
headers and credentials refused. Admin routes get the admin key and buyer routes a funded
buyer's token (schemathesis picks per security scheme), so requests reach the use cases. A
fixed seed and a bounded number of cases per operation keep it to well under a minute on a
quiet machine. fuzz_hooks.py says what the schema cannot state and is taken out.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from api_helpers import ADMIN_KEY, Api, Server

SEED = 8
CASES_PER_OPERATION = 30
RUN_TIMEOUT_S = 600
HERE = Path(__file__).parent
# A valid request may still be refused for what exists: money (402), a lapsed hold (410),
# a taken seat or another state (409), an id that names nothing (404), credentials (401/403).
ACCEPTED_STATUSES = ("2xx", "401", "402", "403", "404", "409", "410")


def _config(directory: Path, buyer_token: str) -> Path:
    config = directory / "schemathesis.toml"
    statuses = ", ".join(f'"{status}"' for status in ACCEPTED_STATUSES)
    config.write_text(
        f'[auth.openapi.admin]\nbearer = "{ADMIN_KEY}"\n'
        f'[auth.openapi.buyer]\nbearer = "{buyer_token}"\n'
        f"[checks.positive_data_acceptance]\nexpected-statuses = [{statuses}]\n"
    )
    return config


def _schemathesis(
    server: Server, directory: Path, *options: str, reuse_keys: bool = False
) -> subprocess.CompletedProcess[str]:
    """`st run` with every check against the server; its exit status and report."""
    api = Api(server)
    api.event(rows=3, seats_per_row=10, capacity=1000, price_minor=1)
    _, buyer = api.buyer(10**9)
    api.close()
    token = buyer["Authorization"].removeprefix("Bearer ")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "SCHEMATHESIS_HOOKS": "fuzz_hooks",
        "LASTSEAT_FUZZ_REUSE_KEYS": "1" if reuse_keys else "0",
    }
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--no-color"),
        *("--config-file", str(_config(directory, token))),
        *("run", f"{server.url}/openapi.json", "--checks", "all"),
        *("--seed", str(SEED), "--max-examples", str(CASES_PER_OPERATION)),
        *("--workers", "1", "--no-shrink", "--request-timeout", "30"),
        *("--suppress-health-check", "all"),
        *options,
    ]
    return subprocess.run(
        command,
        check=False,
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def test_every_check_passes_on_every_operation(sqlite_server: Server, tmp_path: Path) -> None:
    run = _schemathesis(sqlite_server, tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-12000:]
    # The pass really ran: every operation, every phase, many cases.
    operations = re.search(r"Tested:\s+(\d+)", report)
    generated = re.search(r"(\d+) generated", report)
    assert operations and int(operations.group(1)) >= 18, report[-3000:]
    assert generated and int(generated.group(1)) >= 500, report[-3000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", report), report[-3000:]


@pytest.mark.parametrize("operation", ["POST /buyers"])
def test_control_the_pass_fails_when_a_valid_request_is_refused_422(
    sqlite_server: Server, tmp_path: Path, operation: str
) -> None:
    """Without fresh keys, a drawn key comes back with another body and is refused 422
    (idempotency-key-reused): the pass must report that as a schema-valid request rejected."""
    method, path = operation.split()
    run = _schemathesis(
        sqlite_server,
        tmp_path,
        *("--include-method", method, "--include-path", path, "--phases", "fuzzing"),
        reuse_keys=True,
    )
    report = run.stdout + run.stderr
    assert run.returncode != 0, report[-3000:]
    assert "idempotency-key-reused" in report, report[-3000:]
