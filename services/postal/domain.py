"""The shipment state machine: legal moves only, never backwards."""

from __future__ import annotations

RANK = {
    "booking": 0,
    "accepted": 1,
    "picked_up": 2,
    "in_transit": 3,
    "delivered": 4,
    "failed": 4,
    "returned_to_sender": 5,
}
TERMINAL = {"delivered", "returned_to_sender", "cancelled"}
REPORTED = {"picked_up", "in_transit", "delivered", "failed", "returned_to_sender"}


def can_move(current: str, new: str) -> bool:
    """A webhook may skip steps (a lost one) but never go back or leave a terminal state."""
    if current in TERMINAL or new not in RANK:
        return False
    if new == "returned_to_sender":
        return current == "failed"
    return RANK[new] > RANK[current]
