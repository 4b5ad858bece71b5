"""`lastseat serve`: the HTTP service under uvicorn, with one or several worker processes.

Secrets come from the environment (`LASTSEAT_ADMIN_KEY`, `LASTSEAT_TOKEN_SECRET`), never from
the command line, where other users of the machine could read them; `--dev` makes random ones.
Workers are separate processes started from an import string, so each opens its own store and
reads its settings from the environment this command sets up.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import click

from lastseat.api.settings import (
    ADMIN_KEY_ENV,
    DEFAULT_CACHE_TTL_MS,
    DEFAULT_HOLD_TTL_S,
    DEFAULT_IDEMPOTENCY_LEASE_MS,
    DEFAULT_IDEMPOTENCY_RETENTION_S,
    DEFAULT_RECONCILE_INTERVAL_MS,
    HOLD_TTL_ENV,
    IDEMPOTENCY_LEASE_ENV,
    IDEMPOTENCY_RETENTION_ENV,
    MAX_CACHE_TTL_MS,
    MAX_HOLD_TTL_S,
    MAX_IDEMPOTENCY_LEASE_MS,
    MAX_PAYMENT_DELAY_MS,
    MAX_RECONCILE_INTERVAL_MS,
    MIN_IDEMPOTENCY_LEASE_MS,
    MIN_IDEMPOTENCY_RETENTION_S,
    RECONCILE_INTERVAL_ENV,
    TOKEN_SECRET_ENV,
    Settings,
)
from lastseat.bootstrap import (
    DEFAULT_DB,
    PAYMENT_CHOICES,
    LockServices,
    PaymentSettings,
    open_store,
)
from lastseat.concurrency.admission import (
    CLAIM_QUEUE_ENV,
    CLAIMS_IN_FLIGHT_ENV,
    DEFAULT_CLAIM_QUEUE,
    DEFAULT_CLAIMS_IN_FLIGHT,
    MAX_CLAIM_QUEUE,
    MAX_CLAIMS_IN_FLIGHT,
    AdmissionLimits,
)
from lastseat.concurrency.registry import STRATEGY_NAMES
from lastseat.domain.errors import ValidationError

APP_FACTORY = "lastseat.api.app:app_from_env"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
GRACEFUL_SHUTDOWN_S = 5


def _secrets(dev: bool) -> tuple[str, str]:
    """The admin key and token secret: from the environment, or fresh ones under --dev."""
    admin_key = os.environ.get(ADMIN_KEY_ENV, "")
    token_secret = os.environ.get(TOKEN_SECRET_ENV, "")
    if dev:
        if not admin_key:
            admin_key = secrets.token_urlsafe(24)
            click.echo(f"dev admin key: {admin_key}")
        if not token_secret:
            token_secret = secrets.token_urlsafe(32)
            click.echo(f"dev token secret: {token_secret}")
    if not admin_key or not token_secret:
        raise ValidationError(
            f"set {ADMIN_KEY_ENV} and {TOKEN_SECRET_ENV} (or pass --dev for random ones)"
        )
    return admin_key, token_secret


@contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """A shared directory for the workers' Prometheus samples, unless one is set or needless."""
    if workers == 1 or MULTIPROC_ENV in os.environ:
        yield
        return
    path = tempfile.mkdtemp(prefix="lastseat-metrics-")
    os.environ[MULTIPROC_ENV] = path
    try:
        yield
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


@click.command()
@click.option(
    "--db",
    default=DEFAULT_DB,
    show_default=True,
    envvar="LASTSEAT_DB",
    help="SQLite file, sqlite:///path or postgresql://… (env LASTSEAT_DB).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGY_NAMES),
    default="atomic",
    show_default=True,
    envvar="LASTSEAT_STRATEGY",
)
@click.option(
    "--allow-unsafe", is_flag=True, envvar="LASTSEAT_ALLOW_UNSAFE", help="Allow the naive strategy."
)
@click.option(
    "--cache-ttl-ms",
    type=click.IntRange(0, MAX_CACHE_TTL_MS),
    default=DEFAULT_CACHE_TTL_MS,
    show_default=True,
    envvar="LASTSEAT_CACHE_TTL_MS",
    help="Availability read cache per process; 0 disables it.",
)
@click.option(
    "--payment-delay-ms",
    type=click.FloatRange(0, MAX_PAYMENT_DELAY_MS),
    default=0.0,
    envvar="LASTSEAT_PAYMENT_DELAY_MS",
    help="Race lab: sleep between check and write, to widen the race window.",
)
@click.option("--redis-url", envvar="LASTSEAT_REDIS_URL", help="Redis for `redis-lock`.")
@click.option(
    "--redlock-urls",
    envvar="LASTSEAT_REDLOCK_URLS",
    help="Comma-separated URLs of >= 3 independent Redis servers for `redlock`.",
)
@click.option("--zk-hosts", envvar="LASTSEAT_ZK_HOSTS", help="ZooKeeper hosts for `zk-lock`.")
@click.option(
    "--payments",
    type=click.Choice(PAYMENT_CHOICES),
    default="wallet",
    show_default=True,
    envvar="LASTSEAT_PAYMENTS",
    help="Who takes the money: the wallet ledger, or an external provider over HTTP.",
)
@click.option("--provider-url", envvar="LASTSEAT_PROVIDER_URL", help="The external provider.")
@click.option(
    "--provider-api-key",
    envvar="LASTSEAT_PROVIDER_API_KEY",
    default="",
    help="The external provider's API key (better given by environment).",
)
@click.option(
    "--provider-timeout-ms",
    type=click.IntRange(1, 600_000),
    default=2_000,
    show_default=True,
    envvar="LASTSEAT_PROVIDER_TIMEOUT_MS",
    help="How long one call to the provider may take before its outcome counts as unknown.",
)
@click.option(
    "--payment-lease-ms",
    type=click.IntRange(1, 3_600_000),
    default=30_000,
    show_default=True,
    envvar="LASTSEAT_PAYMENT_LEASE_MS",
    help="How long the request that placed an order drives its payment before a reconciler may.",
)
@click.option(
    "--hold-ttl-s",
    type=click.IntRange(1, MAX_HOLD_TTL_S),
    default=DEFAULT_HOLD_TTL_S,
    show_default=True,
    envvar=HOLD_TTL_ENV,
    help="How long holds last (external payments hold a quick buy's inventory while paying).",
)
@click.option(
    "--reconcile-interval-ms",
    type=click.IntRange(0, MAX_RECONCILE_INTERVAL_MS),
    default=DEFAULT_RECONCILE_INTERVAL_MS,
    show_default=True,
    envvar=RECONCILE_INTERVAL_ENV,
    help="How often this server drives unknown external payments to an end (0: never).",
)
@click.option(
    "--idempotency-lease-ms",
    type=click.IntRange(MIN_IDEMPOTENCY_LEASE_MS, MAX_IDEMPOTENCY_LEASE_MS),
    default=DEFAULT_IDEMPOTENCY_LEASE_MS,
    show_default=True,
    envvar=IDEMPOTENCY_LEASE_ENV,
    help="How long a running request holds its Idempotency-Key before a retry may take over.",
)
@click.option(
    "--idempotency-retention-s",
    type=click.IntRange(MIN_IDEMPOTENCY_RETENTION_S),
    default=DEFAULT_IDEMPOTENCY_RETENTION_S,
    show_default=True,
    envvar=IDEMPOTENCY_RETENTION_ENV,
    help="How long finished Idempotency-Key answers are kept for replay.",
)
@click.option(
    "--claims-in-flight",
    type=click.IntRange(0, MAX_CLAIMS_IN_FLIGHT),
    default=DEFAULT_CLAIMS_IN_FLIGHT,
    show_default=True,
    envvar=CLAIMS_IN_FLIGHT_ENV,
    help="Claims per hot pool, seat or section running at once per worker; 0: no limit.",
)
@click.option(
    "--claim-queue",
    type=click.IntRange(0, MAX_CLAIM_QUEUE),
    default=DEFAULT_CLAIM_QUEUE,
    show_default=True,
    envvar=CLAIM_QUEUE_ENV,
    help="Claims per hot resource waiting for a turn per worker; more answer 503 overloaded.",
)
@click.option("--dev", is_flag=True, help="Generate a random admin key and token secret.")
@click.option("--access-log", is_flag=True, help="Log every request.")
def serve(
    db: str,
    host: str,
    port: int,
    workers: int,
    strategy: str,
    allow_unsafe: bool,
    cache_ttl_ms: int,
    payment_delay_ms: float,
    redis_url: str | None,
    redlock_urls: str | None,
    zk_hosts: str | None,
    payments: str,
    provider_url: str | None,
    provider_api_key: str,
    provider_timeout_ms: int,
    payment_lease_ms: int,
    hold_ttl_s: int,
    reconcile_interval_ms: int,
    idempotency_lease_ms: int,
    idempotency_retention_s: int,
    claims_in_flight: int,
    claim_queue: int,
    dev: bool,
    access_log: bool,
) -> None:
    """Serve the HTTP API (OpenAPI at /openapi.json, docs at /docs)."""
    admin_key, token_secret = _secrets(dev)
    settings = Settings(
        admin_key=admin_key,
        token_secret=token_secret.encode(),
        db=db,
        strategy=strategy,
        allow_unsafe=allow_unsafe,
        cache_ttl_ms=cache_ttl_ms,
        payment_delay_ms=payment_delay_ms,
        locks=LockServices(
            redis_url or None,
            tuple(u for u in (redlock_urls or "").split(",") if u),
            zk_hosts or None,
        ),
        idempotency_lease_ms=idempotency_lease_ms,
        idempotency_retention_s=idempotency_retention_s,
        payments=PaymentSettings(
            payments,
            provider_url or None,
            provider_api_key,
            provider_timeout_ms,
            payment_lease_ms=payment_lease_ms,
        ),
        reconcile_interval_ms=reconcile_interval_ms,
        hold_ttl_s=hold_ttl_s,
        admission=AdmissionLimits(claims_in_flight, claim_queue),
    ).validate()
    # Migrate once here, so a bad --db fails as one line before any worker starts.
    open_store(db, create=True).close()
    os.environ.update(settings.to_env())
    # Imported here: the other commands need not pay for loading the web stack.
    import uvicorn  # noqa: PLC0415
    from fastapi import FastAPI  # noqa: PLC0415

    from lastseat.api.app import create_app  # noqa: PLC0415

    app: str | FastAPI = APP_FACTORY if workers > 1 else create_app(settings)
    with _metrics_dir(workers):
        uvicorn.run(
            app,
            host=host,
            port=port,
            factory=workers > 1,
            workers=workers if workers > 1 else None,
            access_log=access_log,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
