"""Use cases (hold, buy, pay, expire, refund, wallets) over ports."""
