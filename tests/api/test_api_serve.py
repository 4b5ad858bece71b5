"""`lastseat serve` itself: several workers, shared metrics, the cache, and refusing bad input."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from api_helpers import (
    ADMIN,
    Api,
    Server,
    bearer,
    idempotency_key,
    seat,
    server_env,
    serving,
)

LASTSEAT = [sys.executable, "-m", "lastseat"]


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, 0 if absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match[1].split(","))) == wanted:
            return float(match[2])
    return 0.0


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("api-workers")
    (root / "tmp").mkdir()
    # serve makes the shared metrics directory in the temp dir, and removes it when done.
    env = server_env(str(root / "w.db"), TMPDIR=str(root / "tmp"))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with serving(str(root / "w.db"), root / "server.log", "--workers", "2", env=env) as server:
        yield server
    assert not list((root / "tmp").glob("lastseat-metrics-*"))


def test_two_workers_serve_one_database_and_every_scrape_counts_all_of_them(
    two_workers: Server,
) -> None:
    api = Api(two_workers)
    event_id = api.event(capacity=50)
    _, headers = api.buyer()

    def buy_one(_: int) -> int:
        # A fresh connection each time, sent concurrently, so both workers take requests.
        return httpx.post(
            f"{two_workers.url}/purchases",
            headers={**headers, **idempotency_key()},
            json={"event_id": event_id, "pool": "standing"},
        ).status_code

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(buy_one, range(12))) == [201] * 12
    taken = httpx.post(
        f"{two_workers.url}/purchases",
        headers={**headers, **idempotency_key()},
        json={"event_id": event_id, "seat_ids": [seat(event_id)]},
    )
    assert taken.status_code == 201
    for _ in range(3):
        refused = httpx.post(
            f"{two_workers.url}/purchases",
            headers={**headers, **idempotency_key()},
            json={"event_id": event_id, "seat_ids": [seat(event_id)]},
        )
        assert refused.status_code == 409
    scrapes = [httpx.get(f"{two_workers.url}/metrics") for _ in range(6)]
    for scrape in scrapes:
        assert scrape.status_code == 200
        assert scrape.headers["content-type"].startswith("text/plain")
        text = scrape.text
        assert _metric(text, "lastseat_purchases_total", strategy="atomic") == 13
        assert _metric(text, "lastseat_conflicts_total", strategy="atomic") == 3
        assert _metric(text, "lastseat_strategy_attempts_total", strategy="atomic") == 16
        assert (
            _metric(
                text,
                "lastseat_http_requests_total",
                route="/purchases",
                method="POST",
                status="201",
            )
            == 13
        )
        assert "lastseat_http_request_duration_seconds_bucket" in text
    api.close()
    # Both worker processes answered requests: each wrote samples of its own.
    [shared] = (two_workers.log.parent / "tmp").glob("lastseat-metrics-*")
    writers = {p.stem.rsplit("_", 1)[1] for p in shared.iterdir()}
    assert len(writers) == 2, writers


def test_each_server_caches_reads_but_no_write_trusts_the_cache(tmp_path: Path) -> None:
    db = str(tmp_path / "cache.db")
    env = server_env(db, LASTSEAT_CACHE_TTL_MS="60000")
    with (
        serving(db, tmp_path / "a.log", env=env) as first,
        serving(db, tmp_path / "b.log", env=env) as second,
    ):
        a, b = Api(first), Api(second)
        event_id = a.event()
        _, alice = a.buyer()
        _, bob = a.buyer()
        assert a.http.get(f"/events/{event_id}").json()["seats_available"] == 6
        claim = {"event_id": event_id, "seat_ids": [seat(event_id)]}
        assert b.buy(bob, claim).status_code == 201
        # The first server still shows its cached picture, yet refuses to sell the seat again.
        assert a.http.get(f"/events/{event_id}").json()["seats_available"] == 6
        assert a.buy(alice, claim).status_code == 409
        # Its own write, refused or not, dropped its cached entry.
        assert a.http.get(f"/events/{event_id}").json()["seats_available"] == 5
        a.close()
        b.close()


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LASTSEAT, "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "drop", "extra"),
    [
        ([], ("LASTSEAT_ADMIN_KEY",), {}),
        ([], ("LASTSEAT_TOKEN_SECRET",), {}),
        ([], (), {"LASTSEAT_TOKEN_SECRET": "short"}),
        (["--strategy", "naive"], (), {}),
        (["--strategy", "bogus"], (), {}),
        (["--db", "/nonexistent-dir/x.db"], (), {}),
        (["--db", "mysql://nope"], (), {}),
        (["--port", "0"], (), {}),
        (["--workers", "0"], (), {}),
        (["--cache-ttl-ms", "-1"], (), {}),
    ],
)
def test_serve_refuses_bad_input_with_one_line_and_exit_2(
    tmp_path: Path, args: list[str], drop: tuple[str, ...], extra: dict[str, str]
) -> None:
    env = {k: v for k, v in server_env(str(tmp_path / "x.db")).items() if k not in drop}
    done = _run(*args, env={**env, **extra})
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith("lastseat: error:")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_serve_dev_makes_up_secrets_prints_them_once_and_they_work(tmp_path: Path) -> None:
    env = server_env(str(tmp_path / "dev.db"))
    del env["LASTSEAT_ADMIN_KEY"], env["LASTSEAT_TOKEN_SECRET"]
    with serving("", tmp_path / "dev.log", "--dev", env=env) as server:
        log = server.log_text()
        key = re.search(r"dev admin key: (\S+)", log)
        assert key is not None, log
        assert log.count(key[1]) == 1
        assert re.search(r"dev token secret: \S+", log)
        created = httpx.post(
            f"{server.url}/buyers",
            headers={**bearer(key[1]), **idempotency_key()},
            json={"buyer_id": "dev-buyer", "currency": "EUR"},
        )
        assert created.status_code == 201
        assert httpx.post(f"{server.url}/buyers", headers=ADMIN, json={}).status_code == 401
