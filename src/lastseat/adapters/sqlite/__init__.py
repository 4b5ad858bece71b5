"""The embedded default store: one SQLite file in WAL mode."""

from lastseat.adapters.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
