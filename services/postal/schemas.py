"""Postal's HTTP contract: what the carrier's webhooks carry."""

from __future__ import annotations

import uuid

from pydantic import ConfigDict, Field

from shared.events import CleanText


class CarrierReport(CleanText):
    """One report of the carrier about a shipment (a webhook body, signed with HMAC)."""

    model_config = ConfigDict(extra="ignore")  # a carrier may add fields; we read what we know
    event_id: str = Field(
        min_length=1, max_length=100, description="The carrier's id of this report; repeats are ignored"
    )
    reference: uuid.UUID = Field(description="Our shipment id, given at booking")
    status: str = Field(min_length=1, max_length=40, examples=["picked_up", "in_transit", "delivered", "failed"])
    reason: str | None = Field(None, max_length=500, description="Why a delivery failed, as the carrier says it")
    shipment_id: str | None = Field(None, max_length=100, description="The carrier's own shipment id")
    at: float | None = Field(None, ge=0, le=4_102_444_800, description="Unix seconds when it happened")
