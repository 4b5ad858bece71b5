"""lastseat: sell limited inventory to many concurrent buyers, exactly once."""

__version__ = "0.1.0"
