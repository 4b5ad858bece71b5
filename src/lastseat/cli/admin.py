"""Commands to set up and inspect a database: events, wallets, availability, buy, sweep."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import click

from lastseat.bootstrap import DEFAULT_DB, PaymentSettings, Services, build, open_store
from lastseat.concurrency.registry import STRATEGY_NAMES
from lastseat.domain.errors import ValidationError
from lastseat.domain.holds import Claim, PoolClaim, SeatClaim
from lastseat.domain.inventory import SeatBlock, build_event, check_id
from lastseat.domain.money import Money
from lastseat.service.idempotency import DEFAULT_RETENTION, IdempotencyService

_BLOCK = re.compile(r"^(?P<section>[^:]+):(?P<rows>\d+)x(?P<per_row>\d+)@(?P<price>\d+)$")
_POOL = re.compile(r"^(?P<name>[^:]+):(?P<capacity>\d+)@(?P<price>\d+)$")
_db_option = click.option(
    "--db", default=DEFAULT_DB, show_default=True, help="SQLite file (or sqlite:///path)."
)


@contextmanager
def _services(
    db: str,
    *,
    create: bool = False,
    strategy: str = "atomic",
    allow_unsafe: bool = False,
    payments: PaymentSettings | None = None,
) -> Iterator[Services]:
    store = open_store(db, create=create)
    try:
        services = build(store, strategy, allow_unsafe=allow_unsafe, payments=payments)
        try:
            yield services
        finally:
            services.close()
    finally:
        store.close()


def parse_block(spec: str, currency: str) -> SeatBlock:
    """`SECTION:ROWSxSEATS@PRICE_MINOR`, e.g. `A:10x20@5000`."""
    match = _BLOCK.match(spec)
    if not match:
        raise ValidationError(f"seat block {spec!r} is not SECTION:ROWSxSEATS@PRICE_MINOR")
    return SeatBlock(
        match["section"],
        int(match["rows"]),
        int(match["per_row"]),
        Money(int(match["price"]), currency),
    )


def parse_pool(spec: str, currency: str) -> tuple[str, int, Money]:
    """`NAME:CAPACITY@PRICE_MINOR`, e.g. `standing:5000@2500`."""
    match = _POOL.match(spec)
    if not match:
        raise ValidationError(f"pool {spec!r} is not NAME:CAPACITY@PRICE_MINOR")
    return match["name"], int(match["capacity"]), Money(int(match["price"]), currency)


@click.group()
def event() -> None:
    """Create events."""


@event.command("create")
@click.argument("event_id")
@click.option("--name", required=True, help="Display name.")
@click.option("--currency", default="EUR", show_default=True)
@click.option("--seats", "blocks", multiple=True, help="SECTION:ROWSxSEATS@PRICE_MINOR")
@click.option("--pool", "pools", multiple=True, help="NAME:CAPACITY@PRICE_MINOR")
@_db_option
def create_event(
    event_id: str,
    name: str,
    currency: str,
    blocks: tuple[str, ...],
    pools: tuple[str, ...],
    db: str,
) -> None:
    """Put an event with seat blocks and/or pools on sale (creates the database if needed)."""
    check_id("event id", event_id)
    made = build_event(
        event_id,
        name,
        currency,
        [parse_block(b, currency) for b in blocks],
        [parse_pool(p, currency) for p in pools],
    )
    with _services(db, create=True) as services:
        services.catalog.create_event(made)
    click.echo(f"event {event_id}: {len(made.seats)} seats, {len(made.pools)} pools")


@click.group()
def wallet() -> None:
    """Open, top up, move and read wallets."""


@wallet.command("create")
@click.argument("buyer")
@click.option("--currency", default="EUR", show_default=True)
@click.option(
    "--top-up", "top_up", type=click.IntRange(min=0), default=0, help="Minor units to bring in."
)
@_db_option
def create_wallet(buyer: str, currency: str, top_up: int, db: str) -> None:
    """Open a buyer's wallet."""
    with _services(db, create=True) as services:
        services.wallets.open_wallet(buyer, currency)
        balance = (
            services.wallets.top_up(buyer, Money(top_up, currency))
            if top_up
            else services.wallets.balance(buyer)
        )
    click.echo(f"{buyer}: {balance}")


@wallet.command("top-up")
@click.argument("buyer")
@click.argument("amount_minor", type=click.IntRange(min=1))
@_db_option
def top_up_wallet(buyer: str, amount_minor: int, db: str) -> None:
    """Bring money into a wallet (minor units)."""
    with _services(db) as services:
        currency = services.wallets.balance(buyer).currency
        click.echo(f"{buyer}: {services.wallets.top_up(buyer, Money(amount_minor, currency))}")


@wallet.command("transfer")
@click.argument("from_buyer")
@click.argument("to_buyer")
@click.argument("amount_minor", type=click.IntRange(min=1))
@_db_option
def transfer_wallet(from_buyer: str, to_buyer: str, amount_minor: int, db: str) -> None:
    """Move money between two wallets (minor units)."""
    with _services(db) as services:
        currency = services.wallets.balance(from_buyer).currency
        left = services.wallets.transfer(from_buyer, to_buyer, Money(amount_minor, currency))
    click.echo(f"{from_buyer}: {left}")


@wallet.command("balance")
@click.argument("buyer")
@_db_option
def wallet_balance(buyer: str, db: str) -> None:
    """Print a wallet's balance."""
    with _services(db) as services:
        click.echo(f"{buyer}: {services.wallets.balance(buyer)}")


@click.command()
@click.argument("event_id")
@click.option("--json", "as_json", is_flag=True, help="Print every seat and pool as JSON.")
@_db_option
def availability(event_id: str, as_json: bool, db: str) -> None:
    """Show what an event has left (lapsed holds count as free)."""
    with _services(db) as services:
        found = services.booking.availability(event_id)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "event_id": found.event_id,
                    "name": found.name,
                    "seats": [
                        {
                            "seat_id": s.seat_id,
                            "section": s.section,
                            "row": s.row,
                            "number": s.number,
                            "price_minor": s.price.amount_minor,
                            "available": s.available,
                        }
                        for s in found.seats
                    ],
                    "pools": [
                        {
                            "pool_id": p.pool_id,
                            "name": p.name,
                            "capacity": p.capacity,
                            "available": p.available,
                            "price_minor": p.price.amount_minor,
                        }
                        for p in found.pools
                    ],
                },
                indent=2,
            )
        )
        return
    click.echo(f"{found.event_id} ({found.name})")
    sections = sorted({s.section for s in found.seats})
    for section in sections:
        in_section = [s for s in found.seats if s.section == section]
        free = sum(1 for s in in_section if s.available)
        click.echo(f"  section {section}: {free} of {len(in_section)} seats available")
    for pool in found.pools:
        click.echo(f"  pool {pool.name}: {pool.available} of {pool.capacity} available")


@click.command()
@click.argument("buyer")
@click.argument("event_id")
@click.option("--seat", "seat_ids", multiple=True, help="Seat id (repeat for a group).")
@click.option("--pool", "pool_name", help="Pool name, for general admission.")
@click.option("--quantity", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--strategy", type=click.Choice(STRATEGY_NAMES), default="atomic", show_default=True)
@click.option("--allow-unsafe", is_flag=True, help="Allow the naive strategy.")
@_db_option
def buy(
    buyer: str,
    event_id: str,
    seat_ids: tuple[str, ...],
    pool_name: str | None,
    quantity: int,
    strategy: str,
    allow_unsafe: bool,
    db: str,
) -> None:
    """Quick buy: claim, charge the buyer's wallet and confirm, all or nothing."""
    claim: Claim
    if bool(seat_ids) == bool(pool_name):
        raise ValidationError("name either --seat (one or more) or --pool")
    if pool_name:
        claim = PoolClaim(event_id, f"{event_id}/{pool_name}", quantity)
    else:
        claim = SeatClaim(event_id, seat_ids)
    with _services(db, strategy=strategy, allow_unsafe=allow_unsafe) as services:
        purchase = services.booking.quick_buy(buyer, claim)
    click.echo(
        f"order {purchase.order.order_id} {purchase.order.status}: "
        f"{purchase.order.amount}, tickets " + " ".join(t.code for t in purchase.tickets)
    )


@click.command()
@click.option("--limit", type=click.IntRange(1, 100_000), default=500, show_default=True)
@click.option(
    "--idempotency-retention-s",
    type=click.IntRange(60),
    default=int(DEFAULT_RETENTION.total_seconds()),
    show_default=True,
    help="Reap Idempotency-Key records older than this.",
)
@click.option(
    "--provider-url",
    envvar="LASTSEAT_PROVIDER_URL",
    help="Also reconcile unknown payments at this external provider.",
)
@click.option("--provider-api-key", envvar="LASTSEAT_PROVIDER_API_KEY", default="")
@_db_option
def sweep(
    limit: int,
    idempotency_retention_s: int,
    provider_url: str | None,
    provider_api_key: str,
    db: str,
) -> None:
    """Expire lapsed holds, reconcile unknown payments (with --provider-url) and reap old
    Idempotency-Keys; safe from many processes at once."""
    payments = PaymentSettings("external", provider_url, provider_api_key) if provider_url else None
    with _services(db, payments=payments) as services:
        click.echo(f"expired {services.booking.expire_lapsed_holds(limit)} holds")
        if payments is not None:
            report = services.checkout.reconcile(limit)
            click.echo(
                f"reconciled {report.examined} payments: {report.confirmed} confirmed,"
                f" {report.failed} failed, {report.refunded} refunded,"
                f" {report.still_unknown} still unknown"
            )
        keys = IdempotencyService(
            services.store, retention=timedelta(seconds=idempotency_retention_s)
        )
        click.echo(f"reaped {keys.reap(limit)} idempotency keys")
