"""Adapters: storage and (later) lock services and payment providers."""
