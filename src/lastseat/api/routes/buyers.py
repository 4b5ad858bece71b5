"""Buyers and wallets: open a wallet and issue a token, top up (admin); read one's wallet."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from lastseat.api.auth import BuyerId, require_admin
from lastseat.api.body import require_json
from lastseat.api.deps import ServicesDep, SettingsDep
from lastseat.api.idempotency import Fence
from lastseat.api.problems import problem_responses
from lastseat.api.schemas import BuyerIn, BuyerOut, IdPath, TopUpIn, WalletOut
from lastseat.domain.money import Money
from lastseat.service.auth import issue_token

router = APIRouter(tags=["buyers"])
_ADMIN = [Depends(require_admin), Depends(require_json)]


@router.post(
    "/buyers",
    status_code=201,
    dependencies=_ADMIN,
    responses=problem_responses(400, 401, 403, 413, 415, 422, 503),
)
def create_buyer(body: BuyerIn, services: ServicesDep, settings: SettingsDep) -> BuyerOut:
    """Open a buyer's wallet (idempotent) and issue the buyer's bearer token."""
    balance = services.wallets.open_wallet(body.buyer_id, body.currency)
    return BuyerOut(
        buyer_id=body.buyer_id,
        token=issue_token(settings.token_secret, body.buyer_id),
        balance_minor=balance.amount_minor,
        currency=balance.currency,
    )


@router.post(
    "/buyers/{buyer_id}/top-ups",
    dependencies=_ADMIN,
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422, 503),
)
def top_up(buyer_id: IdPath, body: TopUpIn, services: ServicesDep, fence: Fence) -> WalletOut:
    """Bring money into a buyer's wallet, in the wallet's currency (once per Idempotency-Key)."""
    currency = services.wallets.balance(buyer_id).currency
    balance = services.wallets.top_up(buyer_id, Money(body.amount_minor, currency), fence)
    return WalletOut(
        buyer_id=buyer_id, balance_minor=balance.amount_minor, currency=balance.currency
    )


@router.get("/wallet", responses=problem_responses(401, 404, 503))
def read_wallet(buyer_id: BuyerId, services: ServicesDep) -> WalletOut:
    """The calling buyer's balance."""
    balance = services.wallets.balance(buyer_id)
    return WalletOut(
        buyer_id=buyer_id, balance_minor=balance.amount_minor, currency=balance.currency
    )
