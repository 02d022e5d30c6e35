"""The delivery's rules, without I/O."""

from __future__ import annotations

import pytest

from services.documents import domain


def test_a_receiver_walks_the_statuses_in_order():
    status = "arrived"
    for wanted in ("accepted", "assigned", "in_processing", "done"):
        status = domain.receiver_move(status, wanted)
    assert status == "done"
    assert domain.receiver_move("accepted", "in_processing") == "in_processing"  # assigning may be skipped


@pytest.mark.parametrize(
    "current, wanted",
    [
        ("arrived", "done"),
        ("sending", "accepted"),
        ("refused", "accepted"),
        ("done", "done"),
        ("recalled", "accepted"),
        ("assigned", "accepted"),
    ],
)
def test_moves_out_of_order_are_refused_with_what_is_allowed(current, wanted):
    with pytest.raises(domain.MoveRefused) as refused:
        domain.receiver_move(current, wanted)
    assert current in str(refused.value) and wanted in str(refused.value)


def test_every_status_has_a_two_digit_code_and_a_vietnamese_label():
    assert all(len(code) == 2 and code.isdigit() for code in domain.CODES.values())
    assert len(set(domain.CODES.values())) == len(domain.CODES)
    assert set(domain.CODES) <= set(domain.LABELS_VI)
    assert domain.LABELS_VI["refused"] == "Từ chối tiếp nhận"


def test_a_document_is_recalled_only_while_nobody_is_done_with_it():
    assert domain.can_recall(["arrived", "in_processing"])
    assert not domain.can_recall(["arrived", "done"])


def test_recipients_are_ours_another_provinces_or_no_agency():
    ours = {"000.21.12.H40": None, "000.00.12.H40": None}
    outside, unknown = domain.split_recipients(["000.21.12.H40", "000.00.00.G01", "000.99.99.H40", "văn thư"], ours)
    assert (outside, unknown) == ({"000.00.00.G01"}, {"000.99.99.H40", "văn thư"})
