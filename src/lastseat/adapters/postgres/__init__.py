"""The server store: PostgreSQL through a psycopg 3 connection pool."""

from lastseat.adapters.postgres.store import PostgresOptions, PostgresStore

__all__ = ["PostgresOptions", "PostgresStore"]
