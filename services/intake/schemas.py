"""Intake's HTTP contract: the commands portals and counters send, and what they get back.

Shapes and types are checked here (422 on a wrong shape); the rules of receipt (procedure,
agency, channel, components, ID and phone formats) are checked by ``checks.py`` so that every
failed rule is reported at once and the refusal is recorded.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field

from shared.events import CleanText, DocumentRef


class Channel(str, Enum):
    online = "online"
    counter = "counter"
    postal = "postal"


class ResultDelivery(str, Enum):
    counter = "counter"
    postal = "postal"
    online = "online"


class NotifyChannel(str, Enum):
    sms = "sms"
    zalo = "zalo"
    email = "email"


class ApplicantIn(CleanText):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    full_name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Thị Hồng Nhung"])
    id_number: str = Field(max_length=50, description="12-digit personal ID number (CCCD)", examples=["001203004567"])
    phone: str = Field(max_length=30, description="Mobile number, 10 digits starting with 0", examples=["0912345678"])
    email: str | None = Field(None, max_length=200)
    address: str = Field(min_length=1, max_length=500, examples=["Số 5, phố Lê Lợi, phường Đông Thành, Ninh Bình"])
    date_of_birth: date | None = Field(
        None,
        ge=date(1900, 1, 1),
        le=date(2100, 1, 1),
        description="Checked against the national population database; filled from it when not given",
    )


class SubmitDossier(CleanText):
    """Command: submit a dossier for an administrative procedure."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    channel: Channel
    procedure_code: str = Field(min_length=1, max_length=50, examples=["1.001193"])
    agency_code: str = Field(min_length=1, max_length=35, examples=["000.21.12.H40"])
    applicant: ApplicantIn
    documents: list[DocumentRef] = Field(default_factory=list, max_length=100)
    result_delivery: ResultDelivery = ResultDelivery.counter
    notify_via: list[NotifyChannel] = Field(
        default_factory=lambda: [NotifyChannel.sms, NotifyChannel.zalo, NotifyChannel.email],
        min_length=1,
        max_length=3,
        description="Channels to tell the citizen on, in order; later ones are fallbacks",
    )
    received_at: datetime | None = Field(
        None, description="Counter only: when a dossier received while the system was unavailable was actually received"
    )


class SupplementDossier(CleanText):
    """Command: the documents a supplement request asked for."""

    model_config = ConfigDict(extra="forbid")
    documents: list[DocumentRef] = Field(min_length=1, max_length=100)


class ReasonOut(BaseModel):
    code: str
    message: str


class HistoryEntry(BaseModel):
    at: datetime
    event: str
    agency_code: str | None
    summary: str


class DossierOut(BaseModel):
    id: uuid.UUID
    code: str
    procedure_code: str
    procedure_name: str
    agency_code: str
    channel: Channel
    status: str
    outcome: str | None = None
    current_step: str | None = None
    current_agency: str | None = None
    received_at: datetime
    due_at: datetime
    overdue: bool = False
    trace_id: str | None
    lookup_key: str | None = Field(
        None,
        description="Given once, at receipt (and on the slip): with the code, "
        "it lets the citizen look the dossier up without signing in",
    )
    identity_status: str = Field(
        "not_checked",
        description="The applicant against the national population database: not_checked, confirmed, "
        "to_confirm (checked again in the background), failed",
    )
    identity_prefilled: list[str] = Field(default_factory=list, description="Fields filled from the database")
    payment_status: str | None = Field(
        None,
        description="An online dossier with a fee: creating, pending (pay at pay_url), paid, refund_requested, "
        "refunded; cancel_requested, cancelled (withdrawn before it was paid); it is processed only once paid",
    )
    pay_url: str | None = Field(None, description="Where the citizen pays, while the payment is pending")
    receipt_no: str | None = Field(None, description="The electronic receipt (biên lai điện tử) of the payment")
    fee_vnd: int | None = Field(None, description="What the citizen pays online, in all (the catalogue's fee lines)")
    history: list[HistoryEntry] = Field(default_factory=list)


class CitizenLookupOut(BaseModel):
    """What anyone holding the code and the lookup key may see: no personal data."""

    code: str
    procedure_name: str
    status: str
    outcome: str | None
    received_at: datetime
    due_at: datetime
    overdue: bool


class RefusalOut(BaseModel):
    status: int = 422
    title: str = "dossier refused at receipt"
    refusal_id: uuid.UUID
    reasons: list[ReasonOut]


class Rating(str, Enum):
    """The three answers the national portal asks a citizen for."""

    very_satisfied = "very_satisfied"  # Rất hài lòng
    satisfied = "satisfied"  # Hài lòng
    dissatisfied = "dissatisfied"  # Không hài lòng


class RateDossier(CleanText):
    """A rating of how the dossier was handled, once its result is out: one per dossier."""

    model_config = ConfigDict(extra="forbid")
    rating: Rating
    comment: str | None = Field(
        None,
        max_length=500,
        description="Optional; numbers that could be an ID or a phone number and e-mail addresses are masked "
        "before it is kept",
    )


class CitizenRating(RateDossier):
    """The citizen's own rating, with the lookup key printed on the slip (Mã tra cứu)."""

    key: str = Field(min_length=1, max_length=16)


class RatingOut(BaseModel):
    code: str
    rating: Rating
    source: str
    at: datetime


class PublicComponent(BaseModel):
    code: str
    name: str
    required: bool


class PublicFeeLine(BaseModel):
    kind: str = Field(description="le_phi (lệ phí, a fee) or phi (phí, a charge)")
    name: str
    amount_vnd: int


class PublicStep(BaseModel):
    name: str
    level: str
    days: float


class PublicProcedure(BaseModel):
    """A procedure as the public catalogue lists it (Decree 61/2018 art. 10; Decree 42/2022):
    who receives it, how long it takes, what it costs, what to bring, how it can be done."""

    code: str
    name: str
    field: str
    receiving_level: str
    time_limit_days: float
    fee_vnd: int | None = Field(description="Fees and charges in VND, in all: 0 when free, null when not stated")
    fees: list[PublicFeeLine] | None = Field(description="The schedule, line by line; null when not stated")
    components: list[PublicComponent]
    channels: list[str]
    online: str = Field(description="full (toàn trình), partial (một phần) or none")
    result_by_post: bool
    steps: list[PublicStep]
    valid_from: date | None
    valid_until: date | None


class PublicCatalogue(BaseModel):
    on: date
    procedures: list[PublicProcedure]
    offered_online: dict[str, int] = Field(description="How many procedures are offered fully, partly, not online")
