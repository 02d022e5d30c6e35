"""The checks at receipt: pure, and every failed rule reported at once."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from services.intake.schemas import SubmitDossier
from shared.events import Reason
from shared.reference import Reference
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
