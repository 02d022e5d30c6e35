"""A procedure's fee schedule as catalogue data: each line a fee (lệ phí) or a charge (phí),
the total what the citizen pays online, "not stated" kept apart from "free"; the payment order
and the public catalogue show the lines apart."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.intake.payments import order_description
from services.intake.publicity import in_full, published
from shared.reference.catalogue import FeeLine, catalogue_for

PROCEDURES = catalogue_for("three_level").procedures


def test_the_total_is_the_sum_of_the_lines_and_not_stated_is_not_free():
    business = PROCEDURES["1.001612"]
    assert [(f.kind, f.amount_vnd) for f in business.fees] == [("le_phi", 50_000), ("phi", 100_000)]
    assert business.fee_vnd == 150_000
    assert PROCEDURES["1.001193"].fees == () and PROCEDURES["1.001193"].fee_vnd == 0  # free
    unstated = PROCEDURES["2.000286"]
    assert unstated.fees is None and unstated.fee_vnd is None and not in_full(unstated)


def test_a_line_is_a_fee_or_a_charge_with_a_bounded_amount():
    assert FeeLine(kind="phi", name="Phí thẩm định", amount_vnd=0).amount_vnd == 0
    for bad in (
        {"kind": "tax", "name": "Thuế", "amount_vnd": 1},
        {"kind": "phi", "name": "", "amount_vnd": 1},
        {"kind": "le_phi", "name": "Lệ phí", "amount_vnd": -1},
        {"kind": "le_phi", "name": "Lệ phí", "amount_vnd": 100_000_001},
    ):
        with pytest.raises(ValidationError):
            FeeLine(**bad)


def test_the_order_and_the_public_catalogue_show_each_line():
    business = PROCEDURES["1.001612"]
    assert order_description(business) == (
        "Đăng ký thành lập doanh nghiệp tư nhân (Lệ phí: Lệ phí đăng ký doanh nghiệp 50.000 đồng; "
        "Phí: Phí công bố nội dung đăng ký doanh nghiệp 100.000 đồng)"
    )
    listed = published(business)
    assert listed.fee_vnd == 150_000
    assert [(f.kind, f.name, f.amount_vnd) for f in listed.fees] == [
        ("le_phi", "Lệ phí đăng ký doanh nghiệp", 50_000),
        ("phi", "Phí công bố nội dung đăng ký doanh nghiệp", 100_000),
    ]
    assert published(PROCEDURES["2.000286"]).fees is None
