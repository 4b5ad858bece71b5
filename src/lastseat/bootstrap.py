"""The composition root: the only place that picks adapters and strategies from settings."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore
from lastseat.adapters.sqlite.store import SqliteOptions, SqliteStore
from lastseat.concurrency.registry import make_strategy
from lastseat.concurrency.retry import RetryPolicy
from lastseat.domain.clock import Clock
from lastseat.domain.errors import ValidationError
from lastseat.service.booking import BookingService
from lastseat.service.catalog import CatalogService
from lastseat.service.ports import Pause, Store, no_pause
from lastseat.service.wallets import WalletService

DEFAULT_DB = "lastseat.db"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


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
        commit = "off" if synchronous.upper() == "OFF" else "on"
        pg = PostgresOptions(safety_nets=safety_nets, synchronous_commit=commit)
        if pool_size:
            pg = replace(pg, min_connections=pool_size, max_connections=pool_size)
        return PostgresStore(db, pg)
    options = SqliteOptions(create=create, safety_nets=safety_nets, synchronous=synchronous)
    return SqliteStore(sqlite_path(db), options)


@dataclass(frozen=True, slots=True)
class Services:
    """Everything an entry point needs, wired to one store."""

    store: Store
    booking: BookingService
    wallets: WalletService
    catalog: CatalogService


def build(
    store: Store,
    strategy: str = "atomic",
    *,
    allow_unsafe: bool = False,
    pause: Pause = no_pause,
    retry: RetryPolicy | None = None,
    clock: Clock | None = None,
) -> Services:
    """Services over `store`, selling with the named strategy."""
    chosen = make_strategy(strategy, allow_unsafe=allow_unsafe, pause=pause, retry=retry)
    return Services(
        store, BookingService(store, chosen, clock), WalletService(store), CatalogService(store)
    )
