"""The event contract: CloudEvents 1.0 in Kafka binary mode.

Attributes travel as ``ce_*`` headers, the JSON body is the event's ``data`` and the record
key is the aggregate id, so any CloudEvents library can read our topics. W3C ``traceparent``
and ``tracestate`` travel as plain headers beside them.

Each event type is a pydantic model with a versioned ``ce_type``
(``vn.lgsp.<aggregate>.<event>.v<N>``). Within a version only additive changes are allowed;
a breaking change is a new type, consumed side by side until the old one drains.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from shared.personal_data import SEALED_MAX

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json; charset=utf-8"
REQUIRED_HEADERS = ("ce_id", "ce_type", "ce_source", "ce_specversion")


class ContractError(ValueError):
    """A record that does not honour the contract. Never retried: it goes to dead letters."""


def check_text(value):
    """Text that every hop can carry and PostgreSQL can store: no NUL, no lone surrogates."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("must be valid Unicode text") from exc
    elif isinstance(value, (list, tuple)):
        for item in value:
            check_text(item)
    return value


class CleanText(BaseModel):
    """Base of every model that carries text in from outside."""

    @field_validator("*", mode="after")
    @classmethod
    def _clean_text(cls, value):
        return check_text(value)


class EventData(CleanText):
    """Base of every event body. Subclasses set ``ce_type`` and ``aggregate``."""

    model_config = ConfigDict(extra="allow", frozen=True)  # extra: additive changes pass through
    ce_type: ClassVar[str]
    aggregate: ClassVar[str] = "dossier"
    if TYPE_CHECKING:
        at: datetime  # every event type has its moment; declared by each, in its own field order

    def subject(self) -> str:
        """The aggregate id: the record key and ``ce_subject``."""
        raise NotImplementedError


EVENT_TYPES: dict[str, type[EventData]] = {}


def event_type(cls: type[EventData]) -> type[EventData]:
    """Register an event model under its ``ce_type``; a type may be registered once."""
    if cls.ce_type in EVENT_TYPES:
        raise ValueError(f"event type {cls.ce_type} registered twice")
    EVENT_TYPES[cls.ce_type] = cls
    return cls


# ------------------------------------------------------------------ shared parts


class Applicant(CleanText):
    """Personal data: carried in event bodies for the services that need it, never logged."""

    model_config = ConfigDict(frozen=True)
    full_name: str = Field(min_length=1, max_length=200)
    # sealed by intake (shared/personal_data.py); the clear forms are accepted from before
    id_number: str = Field(
        pattern=r"^(\d{12}|pd1\.[A-Za-z0-9]{1,32}\.[A-Za-z0-9_-]{1,200})$",
        description="12-digit personal ID (CCCD), sealed",
    )
    phone: str = Field(max_length=SEALED_MAX, description="Vietnamese mobile number, 0xxxxxxxxx, sealed")
    email: str | None = None
    address: str = Field(min_length=1, max_length=500)


class Contact(CleanText):
    """How to reach whoever submitted something, as they gave it (possibly malformed)."""

    model_config = ConfigDict(frozen=True)
    full_name: str = ""
    phone: str = ""
    email: str | None = None


MAX_DOCUMENT_BYTES = 1 << 30
# A reason an official or a check gives, shown to the citizen (shortened further per channel).
ReasonText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
# A dossier code: agency code (up to 35) + "-yymmdd-NNNN".
DOSSIER_CODE_MAX = 60


class DocumentRef(CleanText):
    """A document's claim check: its bytes are in the file store under ``sha256`` (shared/files.py);
    events carry this, never the bytes. A component brought on paper and not scanned has no
    ``sha256`` (it is not digitised). At receipt a portal may name the dossier whose digitised
    result it reuses (``reused_from``) instead of uploading the paper again."""

    model_config = ConfigDict(frozen=True)
    component: str | None = Field(None, max_length=50, description="The procedure's component code it satisfies")
    name: str = Field(min_length=1, max_length=255, description="File name as shown to people")
    media_type: str | None = Field(
        None,
        min_length=3,
        max_length=127,
        description="MIME type (RFC 6838 limits it to 127 characters); judged from the stored file's bytes",
        examples=["application/pdf"],
    )
    size: int | None = Field(None, ge=0, le=MAX_DOCUMENT_BYTES, description="Bytes; at most 1 GiB")
    sha256: str | None = Field(
        None,
        min_length=64,
        max_length=64,
        pattern=r"^[0-9a-f]{64}$",
        description="The file's SHA-256 as the file store returned it at upload; absent: on paper only",
    )
    number: str | None = Field(
        None, min_length=1, max_length=60, description="Số, ký hiệu, when the document is an official one (a decision)"
    )
    document_id: uuid.UUID | None = Field(None, description="The official document in the documents service, if one")
    reused_from: str | None = Field(
        None,
        min_length=1,
        max_length=DOSSIER_CODE_MAX,
        description="The applicant's earlier dossier whose digitised result this component reuses",
    )

    @property
    def digitised(self) -> bool:
        return self.sha256 is not None


class Reason(CleanText):
    model_config = ConfigDict(frozen=True)
    code: str
    message: str


class Actor(CleanText):
    """The official who acted (name and title are public, not personal data)."""

    model_config = ConfigDict(frozen=True)
    name: str = Field(min_length=1, max_length=200)
    title: str = Field("", max_length=200)
    account: str = Field(
        "", max_length=200, description="The identity provider's account (or connected system) that acted"
    )


class DossierEvent(EventData):
    """Every dossier event names the dossier and when it happened."""

    dossier_id: uuid.UUID
    dossier_code: str
    at: datetime

    def subject(self) -> str:
        return str(self.dossier_id)


# ------------------------------------------------------------------ intake's events


@event_type
class DossierReceived(DossierEvent):
    """A dossier passed the checks at receipt, got its code and its due date."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.received.v1"
    procedure_code: str
    procedure_name: str
    agency_code: str
    channel: str
    applicant: Applicant
    documents: tuple[DocumentRef, ...] = ()
    result_delivery: str
    due_at: datetime
    notify_via: tuple[str, ...] = ("sms", "zalo", "email")


@event_type
class DossierRefused(EventData):
    """A submission failed the checks at receipt (Phiếu từ chối): recorded, never dropped."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.refused.v1"
    refusal_id: uuid.UUID
    procedure_code: str
    agency_code: str
    channel: str
    contact: Contact
    reasons: tuple[Reason, ...]
    at: datetime

    def subject(self) -> str:
        return str(self.refusal_id)


@event_type
class DossierSupplemented(DossierEvent):
    """The citizen brought the missing documents; the dossier's clock resumes."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.supplemented.v1"
    documents: tuple[DocumentRef, ...]


@event_type
class DossierIdentityChecked(DossierEvent):
    """The applicant's identity, received "to be confirmed" while the national population database
    did not answer, was checked again: confirmed, or not (an official must look at it). Names
    which fields did not match, never their values."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.identity_checked.v1"
    agency_code: str
    outcome: str = Field(pattern="^(confirmed|failed)$")
    mismatched: tuple[str, ...] = ()


# ------------------------------------------------------------------ routing's events


@event_type
class DossierAssigned(DossierEvent):
    """A workflow step is now held by an agency."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.assigned.v1"
    step_index: int
    step_name: str
    step_kind: str
    level: str
    agency_code: str
    step_due_at: datetime
    due_at: datetime


@event_type
class DossierTransferred(DossierEvent):
    """A handoff between agencies (and possibly levels): một cửa liên thông."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.transferred.v1"
    from_agency: str
    from_level: str
    to_agency: str
    to_level: str
    step_index: int
    actor: Actor


@event_type
class DossierStepAccepted(DossierEvent):
    ce_type: ClassVar[str] = "vn.lgsp.dossier.step_accepted.v1"
    step_index: int
    agency_code: str
    actor: Actor


@event_type
class DossierSupplementRequested(DossierEvent):
    """The clock stops until the citizen supplements (yêu cầu bổ sung, hoàn thiện hồ sơ)."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.supplement_requested.v1"
    agency_code: str
    step_index: int
    reasons: tuple[str, ...]
    remaining_minutes: int
    actor: Actor


@event_type
class DossierResumed(DossierEvent):
    ce_type: ClassVar[str] = "vn.lgsp.dossier.resumed.v1"
    agency_code: str
    step_index: int
    previous_due_at: datetime
    due_at: datetime
    step_due_at: datetime


@event_type
class DossierResolved(DossierEvent):
    ce_type: ClassVar[str] = "vn.lgsp.dossier.resolved.v1"
    outcome: str = Field(pattern="^(approved|refused)$")
    agency_code: str
    result_document: DocumentRef | None = None
    reasons: tuple[str, ...] = ()
    due_at: datetime
    on_time: bool
    actor: Actor


@event_type
class DossierReturned(DossierEvent):
    ce_type: ClassVar[str] = "vn.lgsp.dossier.returned.v1"
    agency_code: str
    method: str
    actor: Actor


class Withdraw(CleanText):
    """Command: the citizen withdraws the dossier. Intake takes it while the dossier waits for
    its fee (routing does not have it yet), routing afterwards; both emit ``DossierWithdrawn``."""

    model_config = ConfigDict(extra="forbid")
    reasons: list[ReasonText] = Field(min_length=1, max_length=20)


@event_type
class DossierWithdrawn(DossierEvent):
    ce_type: ClassVar[str] = "vn.lgsp.dossier.withdrawn.v1"
    reasons: tuple[str, ...]


@event_type
class DossierFileOpened(DossierEvent):
    """Someone opened one of the dossier's files: who, when, which (the dossier's timeline
    shows every opening)."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.file_opened.v1"
    sha256: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
    name: str = Field(min_length=1, max_length=255)
    role: str = Field(pattern="^(component|supplement|result)$")
    agency_code: str | None = Field(None, max_length=35, description="The reader's agency; none for a portal")
    actor: Actor


@event_type
class DossierStopped(DossierEvent):
    ce_type: ClassVar[str] = "vn.lgsp.dossier.stopped.v1"
    agency_code: str
    reasons: tuple[str, ...]
    actor: Actor


@event_type
class DossierAtRisk(DossierEvent):
    """Due within one working day and not resolved yet."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.at_risk.v1"
    agency_code: str
    due_at: datetime


@event_type
class DossierStepOverdue(DossierEvent):
    ce_type: ClassVar[str] = "vn.lgsp.dossier.step_overdue.v1"
    step_index: int
    agency_code: str
    step_due_at: datetime


@event_type
class DossierOverdue(DossierEvent):
    ce_type: ClassVar[str] = "vn.lgsp.dossier.overdue.v1"
    agency_code: str
    due_at: datetime


@event_type
class DossierApologised(DossierEvent):
    """Phiếu xin lỗi và hẹn lại ngày trả kết quả: the agency at fault asks for more time."""

    ce_type: ClassVar[str] = "vn.lgsp.dossier.apologised.v1"
    agency_code: str
    agency_name: str
    previous_due_at: datetime
    new_due_at: datetime
    reason: str


# ------------------------------------------------------------------ postal (BCCI) events
# Keyed by the dossier id (a pickup pre-allocates it), so a dossier's postal hops share its
# partition, its order and its trace.


class ShipmentEvent(EventData):
    dossier_id: uuid.UUID
    dossier_code: str | None = None
    at: datetime

    def subject(self) -> str:
        return str(self.dossier_id)


@event_type
class PickupRequested(ShipmentEvent):
    """A citizen asks the post to pick the dossier up at home (channel ``postal``)."""

    ce_type: ClassVar[str] = "vn.lgsp.postal.pickup_requested.v1"
    procedure_code: str
    agency_code: str
    applicant: Applicant
    documents: tuple[DocumentRef, ...] = ()
    result_delivery: str
    notify_via: tuple[str, ...] = ("sms", "zalo", "email")


@event_type
class ShipmentBooked(ShipmentEvent):
    ce_type: ClassVar[str] = "vn.lgsp.postal.shipment_booked.v1"
    shipment_id: uuid.UUID
    kind: str = Field(pattern="^(pickup|delivery)$")
    carrier_ref: str


@event_type
class ShipmentProgressed(ShipmentEvent):
    """The carrier's report: picked_up, in_transit, delivered, failed, returned_to_sender."""

    ce_type: ClassVar[str] = "vn.lgsp.postal.shipment_progressed.v1"
    shipment_id: uuid.UUID
    kind: str = Field(pattern="^(pickup|delivery)$")
    status: str
    reason: str | None = None


# ------------------------------------------------------------------ official documents (services/documents)

URGENCIES = ("normal", "urgent", "very_urgent", "express")  # thường, khẩn, thượng khẩn, hỏa tốc


class StoredFile(CleanText):
    """A claim check: the file is stored once, content-addressed; events carry this instead."""

    model_config = ConfigDict(frozen=True)
    sha256: str = Field(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, le=MAX_DOCUMENT_BYTES)
    media_type: str = Field(min_length=3, max_length=127)
    location: str = Field(min_length=1, max_length=300, description="Where the receiver fetches it")


class DocumentEvent(EventData):
    aggregate: ClassVar[str] = "document"
    document_id: uuid.UUID
    version: int = Field(1, ge=1, le=1000, description="1, then one more for each update by the sender")
    at: datetime

    def subject(self) -> str:
        return str(self.document_id)


@event_type
class DocumentSent(DocumentEvent):
    """An agency sends (or, with a higher version, updates) an official document."""

    ce_type: ClassVar[str] = "vn.lgsp.document.sent.v1"
    sender_agency: str = Field(min_length=1, max_length=35)
    number: str = Field(min_length=1, max_length=60, description="Số, ký hiệu, e.g. 123/UBND-VP")
    issued_on: date
    summary: str = Field(min_length=1, max_length=2000, description="Trích yếu")
    doc_type: str = Field(min_length=1, max_length=100)
    urgency: str = Field(pattern="^(normal|urgent|very_urgent|express)$")
    recipients: tuple[Annotated[str, StringConstraints(min_length=1, max_length=35)], ...] = Field(
        min_length=1, max_length=100
    )
    file: StoredFile
    dossier_code: str | None = Field(None, max_length=60)
    sent_by: str | None = Field(None, max_length=200)


@event_type
class DocumentStatusChanged(DocumentEvent):
    """A recipient's delivery moved to a new status (edXML status vocabulary)."""

    ce_type: ClassVar[str] = "vn.lgsp.document.status_changed.v1"
    recipient_agency: str = Field(min_length=1, max_length=35)
    status: str = Field(min_length=1, max_length=30)
    code: str = Field(min_length=2, max_length=2)
    reason: str | None = Field(None, max_length=2000)
    by: str | None = Field(None, max_length=200)


@event_type
class DocumentViewOverdue(DocumentEvent):
    """Nobody at a receiving agency opened its copy by the viewing deadline its urgency sets."""

    ce_type: ClassVar[str] = "vn.lgsp.document.view_overdue.v1"
    recipient_agency: str = Field(min_length=1, max_length=35)
    number: str = Field(min_length=1, max_length=60)
    urgency: str = Field(pattern="^(normal|urgent|very_urgent|express)$")
    view_due_at: datetime


# ------------------------------------------------------------------ the envelope


@dataclass(frozen=True)
class Envelope:
    """One CloudEvent as it travels: attributes, the raw body and trace context."""

    id: str
    type: str
    source: str
    subject: str | None
    time: datetime | None  # optional in CloudEvents: a foreign producer may leave it out
    data: bytes
    traceparent: str | None = None
    tracestate: str | None = None
    extra_headers: tuple[tuple[str, bytes], ...] = field(default=())
    signature: str | None = None  # the producer's, over the event's identity and body (shared/provenance.py)

    @classmethod
    def new(
        cls, data: EventData, source: str, *, traceparent: str | None = None, tracestate: str | None = None
    ) -> "Envelope":
        body = data.model_dump_json().encode("utf-8")
        # ce_time is when the occurrence happened: the event's own ``at``, stamped by the
        # producer from the platform's clock, so no second clock is read here.
        return cls(
            id=str(uuid.uuid4()),
            type=data.ce_type,
            source=source,
            subject=data.subject(),
            time=data.at,
            data=body,
            traceparent=traceparent,
            tracestate=tracestate,
        )

    @property
    def key(self) -> bytes | None:
        return self.subject.encode("utf-8") if self.subject else None

    def headers(self) -> list[tuple[str, bytes]]:
        h = [
            ("ce_specversion", SPECVERSION.encode()),
            ("ce_id", self.id.encode()),
            ("ce_type", self.type.encode()),
            ("ce_source", self.source.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ]
        if self.time is not None:
            h.append(("ce_time", self.time.isoformat().encode()))
        if self.subject:
            h.append(("ce_subject", self.subject.encode()))
        if self.traceparent:
            h.append(("traceparent", self.traceparent.encode()))
        if self.tracestate:
            h.append(("tracestate", self.tracestate.encode()))
        if self.signature:
            h.append(("lgsp_signature", self.signature.encode()))
        h.extend(self.extra_headers)
        return h

    @classmethod
    def from_record(cls, headers: list[tuple[str, bytes]] | tuple, value: bytes | None) -> "Envelope":
        """Read a Kafka record; raises ContractError naming what is wrong."""
        hmap: dict[str, str] = {}
        for name, raw in headers or ():
            try:
                hmap[name] = raw.decode("utf-8") if raw is not None else ""
            except UnicodeDecodeError as exc:
                raise ContractError(f"header {name!r} is not UTF-8") from exc
        missing = [h for h in REQUIRED_HEADERS if not hmap.get(h)]
        if missing:
            raise ContractError(f"missing CloudEvents headers: {', '.join(missing)}")
        if hmap["ce_specversion"] != SPECVERSION:
            raise ContractError(f"unsupported ce_specversion {hmap['ce_specversion']!r}")
        if value is None:
            raise ContractError("record has no body")
        try:
            when = datetime.fromisoformat(hmap["ce_time"]) if hmap.get("ce_time") else None
        except ValueError as exc:
            raise ContractError(f"ce_time is not an ISO 8601 timestamp: {hmap['ce_time']!r}") from exc
        return cls(
            id=hmap["ce_id"],
            type=hmap["ce_type"],
            source=hmap["ce_source"],
            subject=hmap.get("ce_subject"),
            time=when,
            data=value,
            traceparent=hmap.get("traceparent"),
            tracestate=hmap.get("tracestate"),
            signature=hmap.get("lgsp_signature"),
        )

    def parse(self) -> EventData:
        """The typed body; unknown types and invalid bodies raise ContractError."""
        model = EVENT_TYPES.get(self.type)
        if model is None:
            raise ContractError(f"unknown event type {self.type!r}")
        try:
            payload = json.loads(self.data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ContractError(f"body is not JSON: {exc}") from exc
        try:
            return model.model_validate(payload)
        except ValidationError as exc:
            raise ContractError(f"body does not match {self.type}: {describe_validation(exc)}") from exc


def describe_validation(exc: ValidationError) -> str:
    """A readable, data-free summary of what failed: field paths and messages, never values."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "body"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
