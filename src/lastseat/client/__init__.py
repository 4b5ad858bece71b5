"""The Python client of the lastseat HTTP API (sync and async)."""
