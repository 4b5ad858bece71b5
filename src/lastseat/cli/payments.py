"""`lastseat payments serve`: the simulated external card processor, with its fault controls.

The api key should come from the environment (`LASTSEAT_PROVIDER_API_KEY`), where other users
of the machine cannot read it; `--api-key` is there for quick manual runs.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from lastseat.domain.errors import ValidationError
from lastseat.provider.settings import API_KEY_ENV, ProviderSettings

RATE = click.FloatRange(0.0, 1.0)
MILLISECONDS = click.FloatRange(0.0, 3_600_000.0)


@click.group()
def payments() -> None:
    """The external payment provider (a card-processor simulator)."""


@payments.command()
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="Its SQLite file.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8100, show_default=True)
@click.option("--api-key", envvar=API_KEY_ENV, default="", help=f"Bearer key (env {API_KEY_ENV}).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault RNG.")
@click.option("--latency-ms", type=MILLISECONDS, default=0.0, help="Median added latency.")
@click.option(
    "--latency-sigma",
    type=click.FloatRange(0.0, 10.0),
    default=0.0,
    help="Log-normal spread of the latency (0: always the median).",
)
@click.option("--slow-rate", type=RATE, default=0.0, help="Fraction of requests made slow.")
@click.option("--slow-ms", type=MILLISECONDS, default=2000.0, show_default=True)
@click.option("--decline-rate", type=RATE, default=0.0, help="Fraction of charges declined.")
@click.option(
    "--capture-timeout-rate",
    type=RATE,
    default=0.0,
    help="Fraction of captures whose answer is held back for --hang-ms.",
)
@click.option("--hang-ms", type=MILLISECONDS, default=30_000.0, show_default=True)
@click.option(
    "--outage-mode",
    type=click.Choice(["503", "refuse"]),
    default=None,
    help="An outage from start-up, for --outage-ms.",
)
@click.option("--outage-ms", type=MILLISECONDS, default=0.0)
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option(
    "--exit-with-parent",
    is_flag=True,
    help="Stop when the process that started this one exits (throwaway providers).",
)
def serve(
    db: str,
    host: str,
    port: int,
    api_key: str,
    seed: int,
    latency_ms: float,
    latency_sigma: float,
    slow_rate: float,
    slow_ms: float,
    decline_rate: float,
    capture_timeout_rate: float,
    hang_ms: float,
    outage_mode: str | None,
    outage_ms: float,
    access_log: bool,
    exit_with_parent: bool,
) -> None:
    """Serve the provider's HTTP API (payments, refunds, /_faults) in one process."""
    # Imported here: the other commands need not pay for loading the web stack.
    from lastseat.provider.faults import FaultConfig, OutageMode  # noqa: PLC0415
    from lastseat.provider.listener import run  # noqa: PLC0415
    from lastseat.provider.store import ProviderStore, ProviderStoreError  # noqa: PLC0415

    if not Path(db).parent.is_dir():
        raise ValidationError(f"--db: no directory {Path(db).parent}")
    faults = FaultConfig(
        latency_ms=latency_ms,
        latency_sigma=latency_sigma,
        slow_rate=slow_rate,
        slow_ms=slow_ms,
        decline_rate=decline_rate,
        capture_timeout_rate=capture_timeout_rate,
        hang_ms=hang_ms,
    )
    try:
        settings = ProviderSettings(
            db=db,
            api_key=api_key,
            host=host,
            port=port,
            seed=seed,
            faults=faults,
            outage_mode=OutageMode(outage_mode) if outage_mode else None,
            outage_ms=outage_ms,
            access_log=access_log,
            parent_pid=os.getppid() if exit_with_parent else None,
        ).validate()
        # Opened once here, so a bad --db fails as one line before the server starts.
        ProviderStore(db).close()
    except (ValueError, ProviderStoreError) as exc:
        raise ValidationError(str(exc)) from exc
    run(settings)
