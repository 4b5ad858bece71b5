"""Where a race's databases live: throwaway SQLite files, a throwaway PostgreSQL, or kept ones.

Every strategy races on a database of its own, made fresh for the run, so that rows of the
comparison table differ only by strategy.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lastseat.adapters.postgres.server import ThrowawayPostgres
from lastseat.bootstrap import is_postgres, sqlite_path
from lastseat.domain.errors import ValidationError

THROWAWAY_POSTGRES = "postgres"


@dataclass(frozen=True, slots=True)
class RaceTarget:
    """One strategy's database (a path or a DSN) and history file."""

    strategy: str
    db: str
    history: Path
    kept: bool


@contextmanager
def race_targets(
    names: list[str], db: str | None, history: Path | None
) -> Iterator[list[RaceTarget]]:
    """Databases and history files for each strategy; throwaway ones are removed afterwards.

    `db` is None (temporary SQLite files), `postgres` (a throwaway PostgreSQL server started
    for the run, one database per strategy), a `postgresql://` URL (an existing, empty
    database: one strategy only) or a SQLite path to keep (one file per strategy).
    """
    with tempfile.TemporaryDirectory(prefix="lastseat-race-") as scratch_dir:
        scratch = Path(scratch_dir)
        several = len(names) > 1
        if db == THROWAWAY_POSTGRES:
            with ThrowawayPostgres() as server:
                yield [
                    _target(
                        n,
                        server.create_database(f"race_{_ident(n)}"),
                        scratch,
                        history,
                        several,
                        kept=False,
                    )
                    for n in names
                ]
        elif db is not None and is_postgres(db):
            if several:
                raise ValidationError(
                    "a PostgreSQL URL holds one race: name one --strategy, or use --db postgres"
                )
            yield [_target(names[0], db, scratch, history, several, kept=True)]
        else:
            yield [_sqlite_target(n, scratch, db, history, several) for n in names]


def _target(
    name: str, db: str, scratch: Path, history: Path | None, several: bool, *, kept: bool
) -> RaceTarget:
    hist = _variant(history, name, several) if history else scratch / f"{name}.jsonl"
    _check_writable(hist)
    return RaceTarget(name, db, hist, kept or history is not None)


def _sqlite_target(
    name: str, scratch: Path, db: str | None, history: Path | None, several: bool
) -> RaceTarget:
    if db is None:
        return _target(name, str(scratch / f"{name}.db"), scratch, history, several, kept=False)
    db_file = _variant(sqlite_path(db), name, several)
    if db_file.exists():
        raise ValidationError(f"{db_file} exists; the race needs a new database file")
    _check_writable(db_file)
    hist = _variant(history, name, several) if history else db_file.with_suffix(".jsonl")
    _check_writable(hist)
    return RaceTarget(name, str(db_file), hist, kept=True)


def _check_writable(path: Path) -> None:
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise ValidationError(f"cannot write {path}: its directory is missing or read-only")


def _variant(path: Path, name: str, several: bool) -> Path:
    return path.with_name(f"{path.stem}.{name}{path.suffix}") if several else path


def _ident(name: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", name.lower())
