"""Server settings from the environment: defaults, parsing, and refusals."""

from __future__ import annotations

import pytest
from api_helpers import ADMIN_KEY, TOKEN_SECRET

from lastseat.api.settings import Settings
from lastseat.domain.errors import UnsafeStrategyError, ValidationError

SECRETS = {"LASTSEAT_ADMIN_KEY": ADMIN_KEY, "LASTSEAT_TOKEN_SECRET": TOKEN_SECRET}


def test_settings_from_the_environment_default_to_atomic_on_a_local_file() -> None:
    settings = Settings.from_env(SECRETS)
    assert (settings.db, settings.strategy, settings.allow_unsafe) == (
        "lastseat.db",
        "atomic",
        False,
    )
    assert (settings.cache_ttl_ms, settings.payment_delay_ms) == (500, 0.0)
    assert settings.admin_key == ADMIN_KEY
    assert settings.token_secret == TOKEN_SECRET.encode()


def test_settings_round_trip_through_the_environment() -> None:
    settings = Settings(
        ADMIN_KEY,
        TOKEN_SECRET.encode(),
        db="postgresql://u@h/db",
        strategy="naive",
        allow_unsafe=True,
        cache_ttl_ms=0,
        payment_delay_ms=2.5,
    ).validate()
    assert Settings.from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    "bad",
    [
        {"LASTSEAT_ADMIN_KEY": ""},
        {"LASTSEAT_TOKEN_SECRET": "too-short"},
        {"LASTSEAT_CACHE_TTL_MS": "-1"},
        {"LASTSEAT_CACHE_TTL_MS": "soon"},
        {"LASTSEAT_CACHE_TTL_MS": "60001"},
        {"LASTSEAT_PAYMENT_DELAY_MS": "nan"},
        {"LASTSEAT_PAYMENT_DELAY_MS": "inf"},
        {"LASTSEAT_PAYMENT_DELAY_MS": "-1"},
        {"LASTSEAT_STRATEGY": "bogus"},
    ],
)
def test_unusable_settings_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings.from_env({**SECRETS, **bad})


def test_the_naive_strategy_needs_the_unsafe_switch() -> None:
    with pytest.raises(UnsafeStrategyError):
        Settings.from_env({**SECRETS, "LASTSEAT_STRATEGY": "naive"})
    allowed = Settings.from_env(
        {**SECRETS, "LASTSEAT_STRATEGY": "naive", "LASTSEAT_ALLOW_UNSAFE": "1"}
    )
    assert allowed.allow_unsafe
