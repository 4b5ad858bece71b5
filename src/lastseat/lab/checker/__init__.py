"""The race lab's checker: is a recorded history, plus the final database state, correct?

`check` is pure: it reads the history of buyer attempts and a `Snapshot`, and returns a
`Verdict` with every violation found. Kinds, by the DESIGN.md §3 invariant they guard:

invariant 1 - a seat is sold once
    seat_sold_twice           a seat with two valid tickets, or in two live holds at once
    seat_state_mismatch       a seat `sold` with no valid ticket, or with one but not `sold`
invariant 2 - a pool never oversells
    pool_over_capacity        more valid tickets than capacity, or held + sold above capacity
    pool_count_mismatch       the `sold` counter is not the valid tickets (a lost update),
                              or the `held` counter is below zero
invariant 3 - one charge per confirmed order
    double_charge             an order with two purchase transfers, or two refunds
    charge_without_order      a purchase for a missing or never-confirmed order, a refund for
                              an order that is not refunded, a refunded order with no refund
    confirmed_without_charge  a confirmed (or refunded) order with no purchase transfer
    ticket_without_order      a valid ticket whose order is missing or not confirmed
invariant 4 - money is conserved
    money_not_conserved       a currency whose balances do not sum to zero, a transfer not
                              recorded as exactly its two entries, a balance not its entries' sum
    negative_balance          an account other than `world` below zero
invariant 5 - what a buyer was told is true
    missing_tickets           an `ok` claim whose order is not confirmed or does not hold
                              exactly the claimed tickets and codes; a partial confirmed order
    failure_with_tickets      a buyer told only failures who holds a confirmed order or valid
                              tickets, or a `fail` whose order is confirmed
    standing_charge           a buyer whose net purchases differ from their confirmed orders
records the checks above rely on
    duplicate_ticket_code     two tickets with one code
    incomplete_operation      an op_id without exactly one invoke and one completion

An `info` completion (outcome unknown) needs no tickets and spares its buyer from
failure_with_tickets; so does an invoke that never completed.

Layout: `facts` indexes the inputs once; the rules live by concept in `inventory` (invariants
1-2), `money` (3-4), `outcomes` (5) and `records`; `verdict` runs them all and counts.
"""

from lastseat.lab.checker.outcomes import REFUND_ACTION
from lastseat.lab.checker.verdict import Verdict, check
from lastseat.lab.checker.violations import KINDS, Violation

__all__ = ["KINDS", "REFUND_ACTION", "Verdict", "Violation", "check"]
