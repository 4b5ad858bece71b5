"""The race lab's checker: is a recorded history, plus the final database state, correct?

`check` is pure: it reads the history of buyer attempts and a `Snapshot`, and returns a
`Verdict` with every violation found. Given the external payment provider's records
(`ProviderLedger`, read after the race) it also checks the orders paid through it: those with
a `payments` row, which have no wallet transfer, so the wallet rules skip them.

Each violation is one finding about one record (a seat, a pool, an order, a key ...), so a
count per kind (`seat_sold_twice x2`) counts findings: a seat with two valid tickets that two
live holds also claim is two findings. A seat or pool broken one way is reported once: the
rules on seat statuses and counters leave a seat sold twice to seat_sold_twice, and
seat_hold_mismatch leaves a status that disagrees with the tickets to seat_state_mismatch.
`Verdict.oversold` counts something else: tickets beyond what exists.

Kinds, by the DESIGN.md §3 invariant they guard (* = only with a ProviderLedger):

invariant 1 - a seat is sold once
    seat_sold_twice           a seat with two valid tickets, or in two live holds at once
    seat_state_mismatch       a seat `sold` with no valid ticket, or with one but not `sold`
    seat_hold_mismatch        a seat whose status disagrees with its holds: `held` but not
                              by an active hold that claims it, `sold` but not by a converted
                              hold that claims it or its ticket of another hold's order, or
                              claimed by an active hold that does not hold it (given back, or
                              given to another hold)
invariant 2 - a pool never oversells
    pool_over_capacity        more valid tickets than capacity, or held + sold above capacity
    pool_count_mismatch       the `sold` counter below zero or not the valid tickets (a lost
                              update)
    pool_held_mismatch        the `held` counter below zero or not the units of the pool's
                              active holds (lapsed ones count until marked expired)
invariant 3 - one charge per confirmed order
    double_charge             an order with two purchase transfers, or two refunds
  * double_capture            an order captured more than once at the provider, or refunded
                              there beyond what was captured
    charge_without_order      a purchase for a missing or never-confirmed order, a refund for
                              an order that is not refunded, a wallet-paid refunded order
                              with no refund
  * capture_without_ticket    a capture for an order that does not exist, or kept (not
                              refunded in full) for an order that is not confirmed
    confirmed_without_charge  a wallet-paid confirmed (or refunded) order with no purchase
                              transfer; * an externally paid confirmed order with no capture
                              kept, or a refunded / expired one whose capture was not refunded
    ticket_without_order      a valid ticket whose order is missing or not confirmed
invariant 4 - money is conserved
    money_not_conserved       a currency whose balances do not sum to zero, a transfer not
                              recorded as exactly its two entries, a balance not its entries' sum
  * money_unbalanced          a currency where the provider's captured - refunded is not the
                              price of the externally paid confirmed orders; a payment row
                              saying captured / refunded / declined against the provider
    negative_balance          an account other than `world` below zero
invariant 5 - what a buyer was told is true
    missing_tickets           an `ok` claim whose order is not confirmed or does not hold
                              exactly the claimed tickets and codes; a partial confirmed order
    failure_with_tickets      a buyer told only failures who holds a confirmed order or valid
                              tickets, or a `fail` whose order is confirmed
    standing_charge           a buyer whose net wallet purchases differ from their confirmed
                              wallet-paid orders
  * unresolved_payment        a payment row still pending / refund_pending, an order still
                              pending_payment, an unknown or 202 answer whose order (named by
                              it or by another answer under its Idempotency-Key) is not final
    replay_mismatch           an Idempotency-Key whose stored final answers (not 202, 5xx or a
                              409 request-in-progress / conflict) differ in status or digest
records the checks above rely on
    duplicate_ticket_code     two tickets with one code
    incomplete_operation      an op_id without exactly one invoke and one completion

An `info` completion (outcome unknown) needs no tickets and spares its buyer from
failure_with_tickets; so does an invoke that never completed.

replay_mismatch needs only the history, so it runs with or without a ProviderLedger; it is
silent on histories whose answers carry no idempotency key.

Layout: `facts` indexes the inputs once; the rules live by concept in `inventory` (invariants
1-2), `claims` (1-2: counters and seat statuses against the holds), `money` (3-4),
`outcomes` (5), `payments` (3-5 at the provider, over `provider`'s index), `answers` (5, over
HTTP answers), `mixed` (5: the mixed scenario's holds, payments, releases, cancels and reads
held to the final state; its kinds are listed there) and `records`; `verdict` runs them all
and counts.
"""

from lastseat.lab.checker.outcomes import REFUND_ACTION
from lastseat.lab.checker.provider import ProviderLedger, ProviderPayment, ProviderRefund
from lastseat.lab.checker.verdict import Verdict, check
from lastseat.lab.checker.violations import KINDS, PROVIDER_KINDS, Violation

__all__ = [
    "KINDS",
    "PROVIDER_KINDS",
    "REFUND_ACTION",
    "ProviderLedger",
    "ProviderPayment",
    "ProviderRefund",
    "Verdict",
    "Violation",
    "check",
]
