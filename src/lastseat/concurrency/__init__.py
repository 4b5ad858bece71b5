"""Claim strategies: the concurrency-control mechanisms a user can choose and compare."""
