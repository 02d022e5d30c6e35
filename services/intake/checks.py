"""The checks at receipt: pure, and every failed rule reported at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.intake.schemas import SubmitDossier
from shared.events import DocumentRef, Reason
from shared.files import ACCEPTED_TYPES
from shared.reference import Reference
from shared.reference.calendar import LOCAL_TZ
from shared.reference.catalogue import Procedure

ID_NUMBER_RE = re.compile(r"^\d{12}$")
PHONE_RE = re.compile(r"^0[35789]\d{8}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_receipt(
    cmd: SubmitDossier, ref: Reference, now: datetime, backdate_max_days: int, may_backdate: bool = False
) -> tuple[Procedure | None, list[Reason]]:
    """Every reason to refuse the submission at receipt. ``may_backdate``: the caller is the
    counter's own software acting for the receiving agency, the only one that may record an
    earlier receipt time (a dossier entered after an outage)."""
    reasons: list[Reason] = []
    catalogue = ref.catalogue
    procedure = catalogue.procedures.get(cmd.procedure_code)
    agency = catalogue.agencies.get(cmd.agency_code)
    if procedure is None:
        reasons.append(Reason(code="unknown_procedure", message=f"no procedure {cmd.procedure_code} in the catalogue"))
    if agency is None:
        reasons.append(Reason(code="unknown_agency", message=f"no agency {cmd.agency_code} in the agency tree"))
    if procedure is not None and agency is not None:
        if (agency.level, agency.unit) != (procedure.receiving_level, procedure.receiving_unit):
            reasons.append(
                Reason(code="agency_does_not_handle", message=f"{agency.name} does not receive '{procedure.name}'")
            )
        else:
            try:
                catalogue.route(procedure, agency.code)
            except LookupError as exc:
                reasons.append(Reason(code="agency_does_not_handle", message=str(exc)))
    if procedure is not None:
        day = (cmd.received_at if cmd.received_at is not None and cmd.received_at.tzinfo else now).astimezone(LOCAL_TZ)
        if not procedure.in_force(day.date()):
            reasons.append(
                Reason(
                    code="procedure_withdrawn",
                    message=f"'{procedure.name}' does not apply on {day:%d/%m/%Y}"
                    + (f" (withdrawn after {procedure.valid_until:%d/%m/%Y})" if procedure.valid_until else ""),
                )
            )
        if cmd.channel.value not in procedure.channels:
            reasons.append(
                Reason(
                    code="channel_not_allowed",
                    message=f"'{procedure.name}' cannot be submitted via {cmd.channel.value}",
                )
            )
        if cmd.result_delivery.value == "postal" and not procedure.postal_result:
            reasons.append(
                Reason(
                    code="postal_result_not_allowed", message=f"the result of '{procedure.name}' cannot be sent by post"
                )
            )
        given = {d.component for d in cmd.documents}
        for component in procedure.required_components():
            if component.code not in given:
                reasons.append(Reason(code="missing_component", message=f"missing {component.code}: {component.name}"))
    if not ID_NUMBER_RE.match(cmd.applicant.id_number):
        reasons.append(Reason(code="malformed_id_number", message="the personal ID number must be exactly 12 digits"))
    if not PHONE_RE.match(cmd.applicant.phone):
        reasons.append(
            Reason(
                code="malformed_phone",
                message="the phone must be a Vietnamese mobile number: 10 digits starting with 03, 05, 07, 08 or 09",
            )
        )
    if cmd.applicant.email and not EMAIL_RE.match(cmd.applicant.email):
        reasons.append(Reason(code="malformed_email", message="the e-mail address is not well formed"))
    if cmd.received_at is not None:
        if cmd.channel.value != "counter" or not may_backdate:
            reasons.append(
                Reason(
                    code="received_at_not_allowed",
                    message="only a counter's own software, for its own agency, may record an earlier receipt time",
                )
            )
        elif cmd.received_at.tzinfo is None:
            reasons.append(Reason(code="received_at_invalid", message="received_at must carry a time zone"))
        elif cmd.received_at > now or cmd.received_at < now - timedelta(days=backdate_max_days):
            reasons.append(
                Reason(
                    code="received_at_invalid",
                    message=f"received_at must be in the last {backdate_max_days} days, not in the future",
                )
            )
    return procedure, reasons


@dataclass(frozen=True)
class StoredFile:
    """What intake knows of an uploaded file: its size and the type its bytes show."""

    size: int
    media_type: str


def check_files(
    documents: list[DocumentRef],
    channel: str,
    uploaded: dict[str, StoredFile],
    reusable: dict[str, DocumentRef],
    max_dossier_bytes: int,
    accepted: frozenset[str] = ACCEPTED_TYPES,
) -> tuple[list[DocumentRef], list[Reason]]:
    """The components as they will be bound (size and type from the stored file, a reused
    result's hash filled in), and every reason to refuse them.

    ``uploaded``: the files the submitting system itself uploaded, by hash; ``reusable``: the
    applicant's own digitised results, by dossier code. An online dossier has every component
    as a file (a portal has no paper); at a counter a component may stay on paper."""
    bound: list[DocumentRef] = []
    reasons: list[Reason] = []
    for doc in documents:
        outcome = _bind(doc, channel, uploaded, reusable, accepted)
        if isinstance(outcome, Reason):
            reasons.append(outcome)
        else:
            bound.append(outcome)
    total = sum(d.size or 0 for d in bound if d.digitised)
    if total > max_dossier_bytes:
        reasons.append(
            Reason(
                code="dossier_too_large",
                message=f"the dossier's files come to {total} bytes; at most {max_dossier_bytes} are accepted",
            )
        )
    return bound, reasons


def _bind(
    doc: DocumentRef,
    channel: str,
    uploaded: dict[str, StoredFile],
    reusable: dict[str, DocumentRef],
    accepted: frozenset[str],
) -> DocumentRef | Reason:
    """One component as it will be bound, or why it cannot be."""
    label = doc.component or doc.name
    if doc.reused_from is not None:
        result = reusable.get(doc.reused_from)
        if result is None:
            return Reason(
                code="reuse_not_found",
                message=f"{label}: dossier {doc.reused_from} has no digitised result of this applicant",
            )
        return doc.model_copy(update={"sha256": result.sha256, "size": result.size, "media_type": result.media_type})
    if doc.sha256 is None:
        if channel == "online":
            return Reason(code="file_required", message=f"{label}: an online dossier carries every component as a file")
        return doc  # on paper: not digitised
    stored = uploaded.get(doc.sha256)
    if stored is None:
        return Reason(
            code="file_not_uploaded",
            message=f"{label}: no file {doc.sha256[:12]}… uploaded by this system; upload it first (POST /v1/files)",
        )
    if doc.size not in (None, stored.size) or doc.media_type not in (None, stored.media_type):
        return Reason(
            code="file_mismatch",
            message=f"{label}: the file stored under this hash is {stored.media_type}, {stored.size} bytes",
        )
    if stored.media_type not in accepted:
        return Reason(code="file_type_not_accepted", message=f"{label}: {stored.media_type} is not accepted")
    return doc.model_copy(update={"size": stored.size, "media_type": stored.media_type})
