"""The external card processor lastseat pays through (`lastseat payments serve`).

A Stripe-like simulator in its own process: `store` (SQLite, idempotency keys stored in the
writing transaction), `ledger` (payments, captures, refunds), `app` (the HTTP API), `faults`
(latency, slow requests, declines, outages, capture-then-timeout, with counters), `listener`
(uvicorn on a socket it owns, so a "refuse" outage really refuses connections).
"""
