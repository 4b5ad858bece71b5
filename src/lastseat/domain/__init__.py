"""Entities, state machines, errors and money. No I/O, no third-party imports."""
