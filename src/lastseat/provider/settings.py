"""Settings of one provider process: where it listens, its key, its store, its faults at start."""

from __future__ import annotations

from dataclasses import dataclass, field

from lastseat.provider.faults import FaultConfig, OutageMode

API_KEY_ENV = "LASTSEAT_PROVIDER_API_KEY"
MAX_BODY_BYTES = 16 * 1024
GRACEFUL_SHUTDOWN_S = 1  # answers held back by a fault are not worth waiting for


@dataclass(frozen=True, slots=True)
class ProviderSettings:
    """Everything `lastseat payments serve` was told."""

    db: str
    api_key: str
    host: str = "127.0.0.1"
    port: int = 8100
    seed: int = 0
    faults: FaultConfig = field(default_factory=FaultConfig)
    outage_mode: OutageMode | None = None
    outage_ms: float = 0.0
    max_body_bytes: int = MAX_BODY_BYTES
    access_log: bool = False
    parent_pid: int | None = None  # exit when this process is gone (throwaway providers)

    def validate(self) -> ProviderSettings:
        """Return self, or raise ValueError naming the first bad setting."""
        if len(self.api_key) < 8:
            raise ValueError(f"the api key must have at least 8 characters (or set {API_KEY_ENV})")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"port must be between 1 and 65535, got {self.port}")
        if self.outage_ms < 0:
            raise ValueError("outage_ms must not be negative")
        self.faults.validate()
        return self
