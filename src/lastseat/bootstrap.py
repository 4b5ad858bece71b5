"""The composition root: the only place that picks adapters and strategies from settings.

Each adapter is imported where it is picked: a SQLite server never loads psycopg, and only the
lock-service strategies load the Redis or ZooKeeper clients (start-up time, issue 8).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

from lastseat.concurrency.admission import AdmissionLimits, gated
from lastseat.concurrency.registry import make_strategy
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.clock import Clock
from lastseat.domain.errors import ValidationError
from lastseat.domain.holds import DEFAULT_HOLD_TTL
from lastseat.service.booking import BookingService
from lastseat.service.catalog import CatalogService
from lastseat.service.checkout import Checkout
from lastseat.service.idempotency import RequestBegins
from lastseat.service.locking import LockManager
from lastseat.service.payments import PaymentProvider
from lastseat.service.ports import Pause, Store, no_pause
from lastseat.service.wallets import WalletService

DEFAULT_DB = "lastseat.db"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
REDLOCK_MIN_SERVERS = 3


def is_postgres(db: str) -> bool:
    """True if a `--db` value is a PostgreSQL URL."""
    return db.startswith(POSTGRES_SCHEMES)


def sqlite_path(db: str) -> Path:
    """The file a `--db` value names: `sqlite:///path`, or a plain path."""
    if db.startswith("sqlite:///"):
        return Path(db.removeprefix("sqlite:///"))
    if "://" in db:
        raise ValidationError(
            f"unsupported database URL {db!r}; use a path, sqlite:///path or postgresql://..."
        )
    return Path(db)


def open_store(
    db: str = DEFAULT_DB,
    *,
    create: bool = True,
    safety_nets: bool = True,
    synchronous: str = "FULL",
    pool_size: int | None = None,
) -> Store:
    """Open (and migrate) the database a `--db` value names: a SQLite path or a PostgreSQL URL.

    For PostgreSQL the database itself must exist (`create` only concerns SQLite files), and
    `synchronous` OFF means `synchronous_commit = off`, anything else durable commits.
    `pool_size` opens that many PostgreSQL connections up front (an app server should: a pool
    that grows one connection at a time under a rush serializes the first requests).
    """
    if is_postgres(db):
        from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore  # noqa: PLC0415

        commit = "off" if synchronous.upper() == "OFF" else "on"
        pg = PostgresOptions(safety_nets=safety_nets, synchronous_commit=commit)
        if pool_size:
            pg = replace(pg, min_connections=pool_size, max_connections=pool_size)
        return PostgresStore(db, pg)
    from lastseat.adapters.sqlite.store import SqliteOptions, SqliteStore  # noqa: PLC0415

    options = SqliteOptions(create=create, safety_nets=safety_nets, synchronous=synchronous)
    return SqliteStore(sqlite_path(db), options)


async def open_request_begins(db: str, size: int) -> RequestBegins | None:
    """Idempotency-Key begins on an asyncio pool for an app server on PostgreSQL (no thread
    hop, one round trip); None on SQLite, whose begins stay on the store's threads."""
    if not is_postgres(db):
        return None
    from lastseat.adapters.postgres.request_begins import PostgresRequestBegins  # noqa: PLC0415

    begins = PostgresRequestBegins(db, size)
    await begins.open()
    return begins


@dataclass(frozen=True, slots=True)
class LockServices:
    """Where the lock services of the lock-refereed strategies live (env LASTSEAT_REDIS_URL,
    LASTSEAT_REDLOCK_URLS (comma-separated, >= 3), LASTSEAT_ZK_HOSTS)."""

    redis_url: str | None = None
    redlock_urls: tuple[str, ...] = ()
    zk_hosts: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LockServices:
        """The lock services named by environment variables."""
        urls = tuple(u for u in environ.get("LASTSEAT_REDLOCK_URLS", "").split(",") if u)
        return cls(
            environ.get("LASTSEAT_REDIS_URL") or None,
            urls,
            environ.get("LASTSEAT_ZK_HOSTS") or None,
        )

    def as_env(self) -> dict[str, str]:
        """The environment variables that name these services (for server processes)."""
        return {
            "LASTSEAT_REDIS_URL": self.redis_url or "",
            "LASTSEAT_REDLOCK_URLS": ",".join(self.redlock_urls),
            "LASTSEAT_ZK_HOSTS": self.zk_hosts or "",
        }


def open_locks(strategy: str, services: LockServices | None) -> LockManager | None:
    """The lock manager a strategy needs, or None for strategies that need none."""
    services = services or LockServices()
    # Imported when picked: each lock service's client library costs start-up time.
    if strategy == "redis-lock":
        from lastseat.adapters.locks.redis_lock import RedisLockManager  # noqa: PLC0415

        if not services.redis_url:
            raise ValidationError("redis-lock needs a Redis URL (LASTSEAT_REDIS_URL)")
        return RedisLockManager(services.redis_url)
    if strategy == "redlock":
        from lastseat.adapters.locks.redlock import RedlockManager  # noqa: PLC0415

        if len(services.redlock_urls) < REDLOCK_MIN_SERVERS:
            raise ValidationError("redlock needs >= 3 Redis URLs (LASTSEAT_REDLOCK_URLS)")
        return RedlockManager(list(services.redlock_urls))
    if strategy == "zk-lock":
        from lastseat.adapters.locks.zookeeper_lock import ZooKeeperLockManager  # noqa: PLC0415

        if not services.zk_hosts:
            raise ValidationError("zk-lock needs ZooKeeper hosts (LASTSEAT_ZK_HOSTS)")
        return ZooKeeperLockManager(services.zk_hosts)
    return None


PAYMENT_CHOICES = ("wallet", "external")


@dataclass(frozen=True, slots=True)
class PaymentSettings:
    """Who takes the money (env LASTSEAT_PAYMENTS = wallet | external; for external,
    LASTSEAT_PROVIDER_URL, LASTSEAT_PROVIDER_API_KEY, LASTSEAT_PROVIDER_TIMEOUT_MS)."""

    payments: str = "wallet"
    provider_url: str | None = None
    provider_api_key: str = ""
    provider_timeout_ms: int = 2_000
    provider_attempts: int = 3
    # How long the request that placed an order drives its payment before a reconciler may
    # (longer than the provider calls it makes: attempts x timeout plus backoff).
    payment_lease_ms: int = 30_000

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> PaymentSettings:
        """The payment settings named by environment variables."""
        return cls(
            environ.get("LASTSEAT_PAYMENTS", "wallet") or "wallet",
            environ.get("LASTSEAT_PROVIDER_URL") or None,
            environ.get("LASTSEAT_PROVIDER_API_KEY", ""),
            _milliseconds(environ, "LASTSEAT_PROVIDER_TIMEOUT_MS", 2_000),
            payment_lease_ms=_milliseconds(environ, "LASTSEAT_PAYMENT_LEASE_MS", 30_000),
        ).validated()

    def validated(self) -> PaymentSettings:
        """These settings, or ValidationError naming what is wrong."""
        if self.payments not in PAYMENT_CHOICES:
            raise ValidationError(f"payments must be one of {', '.join(PAYMENT_CHOICES)}")
        if self.payments == "external" and not self.provider_url:
            raise ValidationError("external payments need a provider URL (LASTSEAT_PROVIDER_URL)")
        return self

    def as_env(self) -> dict[str, str]:
        """The environment variables that carry these settings (for server processes)."""
        return {
            "LASTSEAT_PAYMENTS": self.payments,
            "LASTSEAT_PROVIDER_URL": self.provider_url or "",
            "LASTSEAT_PROVIDER_API_KEY": self.provider_api_key,
            "LASTSEAT_PROVIDER_TIMEOUT_MS": str(self.provider_timeout_ms),
            "LASTSEAT_PAYMENT_LEASE_MS": str(self.payment_lease_ms),
        }


def _milliseconds(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name) or str(default)
    if not text.isdigit() or not 1 <= int(text) <= 3_600_000:
        raise ValidationError(f"{name} must be 1..3600000 milliseconds")
    return int(text)


def open_provider(store: Store, settings: PaymentSettings | None) -> PaymentProvider:
    """The payment provider the settings name: the wallet ledger unless told otherwise."""
    settings = (settings or PaymentSettings()).validated()
    if settings.payments == "external" and settings.provider_url:
        from lastseat.adapters.payments.http import HttpPaymentProvider  # noqa: PLC0415

        return HttpPaymentProvider(
            settings.provider_url,
            settings.provider_api_key,
            timeout_s=settings.provider_timeout_ms / 1000,
            attempts=settings.provider_attempts,
        )
    from lastseat.adapters.payments.wallet import WalletPaymentProvider  # noqa: PLC0415

    return WalletPaymentProvider(store)


@dataclass(frozen=True, slots=True)
class Services:
    """Everything an entry point needs, wired to one store."""

    store: Store
    booking: BookingService
    wallets: WalletService
    catalog: CatalogService
    checkout: Checkout

    def close(self) -> None:
        """Release what the services opened besides the store (the provider's connections)."""
        self.checkout.provider.close()


def build(
    store: Store,
    strategy: str = "atomic",
    *,
    allow_unsafe: bool = False,
    pause: Pause = no_pause,
    retry: RetryPolicy | None = None,
    clock: Clock | None = None,
    locks: LockServices | None = None,
    payments: PaymentSettings | None = None,
    hold_ttl: timedelta = DEFAULT_HOLD_TTL,
    admission: AdmissionLimits | None = None,
) -> Services:
    """Services over `store`, selling with the named strategy, paid as `payments` says; its
    claims pass an admission gate with the default limits unless `admission` says otherwise."""
    chosen = gated(
        make_strategy(
            strategy,
            allow_unsafe=allow_unsafe,
            pause=pause,
            retry=retry,
            locks=open_locks(strategy, locks),
        ),
        admission or AdmissionLimits(),
    )
    booking = BookingService(store, chosen, clock, hold_ttl)
    lease = timedelta(milliseconds=(payments or PaymentSettings()).payment_lease_ms)
    checkout = Checkout(booking, open_provider(store, payments), payment_lease=lease)
    return Services(store, booking, WalletService(store), CatalogService(store), checkout)
