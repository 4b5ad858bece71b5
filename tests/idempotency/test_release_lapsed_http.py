"""Releasing a lapsed hold over HTTP: one answer, whoever touched the hold first.

Two of a buyer's holds lapse. Nobody touches the first; another buyer's claim on the second's
seat expires it in passing (seen in storage before the release is sent). Releasing either one
answers 200 with `"status": "expired"`, and so does releasing it again; the second used to be
409 invalid-state.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from api_helpers import Api, serving

from lastseat.bootstrap import open_store

WAIT_S = 60.0


def _stored_status(db: str, hold_id: str) -> str:
    store = open_store(db, create=False)
    try:
        (hold,) = (h for h in store.snapshot().holds if h.hold_id == hold_id)
        return hold.status
    finally:
        store.close()


def _wait_until_lapsed(client: httpx.Client, hold_id: str) -> None:
    """Poll the server (its clock decides) until the hold reads as lapsed."""
    deadline = time.monotonic() + WAIT_S
    while client.get(f"/holds/{hold_id}").json()["status"] != "expired":
        assert time.monotonic() < deadline, "the hold never lapsed"
        time.sleep(0.1)


def test_releasing_a_lapsed_hold_answers_expired_whether_or_not_it_was_expired_in_passing(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "shop.db")
    with serving(db, tmp_path / "server.log") as server:
        api = Api(server)
        event_id = api.event(rows=1, seats_per_row=2)
        _, alice = api.buyer()
        _, bob = api.buyer()
        seats = [f"{event_id}/A/0001/000{n}" for n in (1, 2)]
        holds = []
        for seat_id in seats:
            claim = {"event_id": event_id, "seat_ids": [seat_id], "ttl_s": 1}
            placed = api.http.post("/holds", headers=alice, json=claim)
            assert placed.status_code == 201, placed.text
            holds.append(placed.json()["hold_id"])
        untouched, passed_over = holds
        with httpx.Client(base_url=server.url, headers=alice, timeout=30) as client:
            for hold_id in holds:
                _wait_until_lapsed(client, hold_id)
        bought = api.http.post(
            "/purchases", headers=bob, json={"event_id": event_id, "seat_ids": [seats[1]]}
        )
        assert bought.status_code == 201, bought.text
        assert _stored_status(db, untouched) == "active"  # lapsed, nobody marked it
        assert _stored_status(db, passed_over) == "expired"  # bob's claim expired it

        for hold_id in (untouched, passed_over, untouched, passed_over):
            answer = api.http.delete(f"/holds/{hold_id}", headers=alice)
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "expired"
        assert _stored_status(db, untouched) == "expired"
        assert api.http.get(f"/events/{event_id}").json()["seats_available"] == 1  # bob's sold
        api.close()
