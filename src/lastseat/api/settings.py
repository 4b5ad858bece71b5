"""What one HTTP server process needs to know, read from `LASTSEAT_*` environment variables.

Secrets are kept out of `repr`, so a settings object can be logged without leaking them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from lastseat.bootstrap import DEFAULT_DB, LockServices, PaymentSettings
from lastseat.concurrency.admission import (
    CLAIM_QUEUE_ENV,
    CLAIMS_IN_FLIGHT_ENV,
    MAX_CLAIM_QUEUE,
    MAX_CLAIMS_IN_FLIGHT,
    AdmissionLimits,
)
from lastseat.concurrency.registry import LOCK_SERVICE_NAMES, make_strategy
from lastseat.domain.errors import ValidationError
from lastseat.service.auth import MIN_SECRET_BYTES
from lastseat.service.ports import Pause, no_pause

DB_ENV = "LASTSEAT_DB"
STRATEGY_ENV = "LASTSEAT_STRATEGY"
ALLOW_UNSAFE_ENV = "LASTSEAT_ALLOW_UNSAFE"
ADMIN_KEY_ENV = "LASTSEAT_ADMIN_KEY"
TOKEN_SECRET_ENV = "LASTSEAT_TOKEN_SECRET"  # noqa: S105 - a variable name, not a secret
CACHE_TTL_ENV = "LASTSEAT_CACHE_TTL_MS"
PAYMENT_DELAY_ENV = "LASTSEAT_PAYMENT_DELAY_MS"
IDEMPOTENCY_LEASE_ENV = "LASTSEAT_IDEMPOTENCY_LEASE_MS"
IDEMPOTENCY_RETENTION_ENV = "LASTSEAT_IDEMPOTENCY_RETENTION_S"
MAX_PAYMENT_DELAY_MS = 10_000.0
DEFAULT_IDEMPOTENCY_LEASE_MS = 30_000
MIN_IDEMPOTENCY_LEASE_MS, MAX_IDEMPOTENCY_LEASE_MS = 100, 3_600_000
DEFAULT_IDEMPOTENCY_RETENTION_S = 24 * 3600
MIN_IDEMPOTENCY_RETENTION_S = 60
RECONCILE_INTERVAL_ENV = "LASTSEAT_RECONCILE_INTERVAL_MS"
HOLD_TTL_ENV = "LASTSEAT_HOLD_TTL_S"
DEFAULT_HOLD_TTL_S = 600
MAX_HOLD_TTL_S = 86_400
DEFAULT_RECONCILE_INTERVAL_MS = 2_000
MAX_RECONCILE_INTERVAL_MS = 3_600_000
DEFAULT_CACHE_TTL_MS = 500
MAX_CACHE_TTL_MS = 60_000
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True, slots=True)
class Settings:
    """One server's configuration; `validate()` refuses unusable values with ValidationError."""

    admin_key: str = field(repr=False)
    token_secret: bytes = field(repr=False)
    db: str = DEFAULT_DB
    strategy: str = "atomic"
    allow_unsafe: bool = False
    cache_ttl_ms: int = DEFAULT_CACHE_TTL_MS
    payment_delay_ms: float = 0.0  # the race lab's widened check-to-write window
    locks: LockServices = field(default_factory=LockServices)
    # How long a request running under an Idempotency-Key holds it before a retry may take
    # over (renewed while it runs), and how long finished keys are kept for replay.
    idempotency_lease_ms: int = DEFAULT_IDEMPOTENCY_LEASE_MS
    idempotency_retention_s: int = DEFAULT_IDEMPOTENCY_RETENTION_S
    payments: PaymentSettings = field(default_factory=PaymentSettings)
    # How often this server's reconciler drives unknown external payments (0: never).
    reconcile_interval_ms: int = DEFAULT_RECONCILE_INTERVAL_MS
    # How long a hold lasts unless a request asks otherwise (quick buys through an external
    # provider hold their inventory this long while the payment runs).
    hold_ttl_s: int = DEFAULT_HOLD_TTL_S
    # Claims per hot resource (pool, seat, section) running at once in this process, and
    # waiting; one more is answered 503 overloaded (concurrency/admission.py).
    admission: AdmissionLimits = field(default_factory=AdmissionLimits)

    def validate(self) -> Settings:
        """This object, if every value is usable; else ValidationError (or UnsafeStrategyError)."""
        if not self.admin_key:
            raise ValidationError(f"{ADMIN_KEY_ENV} is not set")
        if len(self.token_secret) < MIN_SECRET_BYTES:
            raise ValidationError(
                f"{TOKEN_SECRET_ENV} must be set to at least {MIN_SECRET_BYTES} bytes"
            )
        if not 0 <= self.cache_ttl_ms <= MAX_CACHE_TTL_MS:
            raise ValidationError(f"{CACHE_TTL_ENV} must be 0..{MAX_CACHE_TTL_MS}")
        if not 0 <= self.payment_delay_ms <= MAX_PAYMENT_DELAY_MS:  # NaN fails too
            raise ValidationError(f"{PAYMENT_DELAY_ENV} must be 0..{MAX_PAYMENT_DELAY_MS:g}")
        lease_range = f"{MIN_IDEMPOTENCY_LEASE_MS}..{MAX_IDEMPOTENCY_LEASE_MS}"
        if not MIN_IDEMPOTENCY_LEASE_MS <= self.idempotency_lease_ms <= MAX_IDEMPOTENCY_LEASE_MS:
            raise ValidationError(f"{IDEMPOTENCY_LEASE_ENV} must be {lease_range}")
        if self.idempotency_retention_s < MIN_IDEMPOTENCY_RETENTION_S:
            raise ValidationError(
                f"{IDEMPOTENCY_RETENTION_ENV} must be at least {MIN_IDEMPOTENCY_RETENTION_S}"
            )
        if not 0 <= self.reconcile_interval_ms <= MAX_RECONCILE_INTERVAL_MS:
            raise ValidationError(
                f"{RECONCILE_INTERVAL_ENV} must be 0..{MAX_RECONCILE_INTERVAL_MS}"
            )
        if not 1 <= self.hold_ttl_s <= MAX_HOLD_TTL_S:
            raise ValidationError(f"{HOLD_TTL_ENV} must be 1..{MAX_HOLD_TTL_S}")
        self.payments.validated()
        if not 0 <= self.admission.in_flight <= MAX_CLAIMS_IN_FLIGHT:
            raise ValidationError(f"{CLAIMS_IN_FLIGHT_ENV} must be 0..{MAX_CLAIMS_IN_FLIGHT}")
        if not 0 <= self.admission.queue <= MAX_CLAIM_QUEUE:
            raise ValidationError(f"{CLAIM_QUEUE_ENV} must be 0..{MAX_CLAIM_QUEUE}")
        if self.strategy not in LOCK_SERVICE_NAMES:  # those are checked when they connect
            make_strategy(self.strategy, allow_unsafe=self.allow_unsafe)
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from environment variables, validated."""
        ttl_text = environ.get(CACHE_TTL_ENV, str(DEFAULT_CACHE_TTL_MS))
        if not ttl_text.strip().isdigit():
            raise ValidationError(f"{CACHE_TTL_ENV} must be a whole number of milliseconds")
        try:
            delay_ms = float(environ.get(PAYMENT_DELAY_ENV) or 0)
        except ValueError:
            raise ValidationError(f"{PAYMENT_DELAY_ENV} must be a number") from None
        return cls(
            admin_key=environ.get(ADMIN_KEY_ENV, ""),
            token_secret=environ.get(TOKEN_SECRET_ENV, "").encode(),
            db=environ.get(DB_ENV, DEFAULT_DB),
            strategy=environ.get(STRATEGY_ENV, "atomic"),
            allow_unsafe=environ.get(ALLOW_UNSAFE_ENV, "").lower() in _TRUE,
            cache_ttl_ms=int(ttl_text),
            payment_delay_ms=delay_ms,
            locks=LockServices.from_env(environ),
            idempotency_lease_ms=_whole(
                environ, IDEMPOTENCY_LEASE_ENV, DEFAULT_IDEMPOTENCY_LEASE_MS
            ),
            idempotency_retention_s=_whole(
                environ, IDEMPOTENCY_RETENTION_ENV, DEFAULT_IDEMPOTENCY_RETENTION_S
            ),
            payments=PaymentSettings.from_env(environ),
            reconcile_interval_ms=_whole(
                environ, RECONCILE_INTERVAL_ENV, DEFAULT_RECONCILE_INTERVAL_MS
            ),
            hold_ttl_s=_whole(environ, HOLD_TTL_ENV, DEFAULT_HOLD_TTL_S),
            admission=AdmissionLimits.from_env(environ),
        ).validate()

    def pause(self) -> Pause:
        """The strategy's check-to-write pause: none, or a sleep of `payment_delay_ms`."""
        if not self.payment_delay_ms:
            return no_pause
        delay_s = self.payment_delay_ms / 1000

        def sleep() -> None:
            time.sleep(delay_s)

        return sleep

    def to_env(self) -> dict[str, str]:
        """The environment variables that make `from_env` return these settings."""
        return {
            DB_ENV: self.db,
            STRATEGY_ENV: self.strategy,
            ALLOW_UNSAFE_ENV: "1" if self.allow_unsafe else "",
            ADMIN_KEY_ENV: self.admin_key,
            TOKEN_SECRET_ENV: self.token_secret.decode(),
            CACHE_TTL_ENV: str(self.cache_ttl_ms),
            PAYMENT_DELAY_ENV: f"{self.payment_delay_ms:g}",
            IDEMPOTENCY_LEASE_ENV: str(self.idempotency_lease_ms),
            IDEMPOTENCY_RETENTION_ENV: str(self.idempotency_retention_s),
            RECONCILE_INTERVAL_ENV: str(self.reconcile_interval_ms),
            HOLD_TTL_ENV: str(self.hold_ttl_s),
            CLAIMS_IN_FLIGHT_ENV: str(self.admission.in_flight),
            CLAIM_QUEUE_ENV: str(self.admission.queue),
            **self.locks.as_env(),
            **self.payments.as_env(),
        }


def _whole(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name) or str(default)
    if not text.strip().isdigit():
        raise ValidationError(f"{name} must be a whole number")
    return int(text)
