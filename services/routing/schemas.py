"""Routing's HTTP contract: what agencies' systems send to act on the step they hold."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.events import CleanText, DocumentRef, ReasonText


class StepCommand(CleanText):
    """Who acted is not said here: it is the person (or connected system) of the access token,
    named as the identity provider has them; a body naming an actor is refused."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    agency_code: str = Field(
        min_length=1, max_length=35, description="The agency acting; it must hold the current step"
    )


class AcceptStep(StepCommand):
    """Command: the agency takes up the step it was assigned."""


class ForwardStep(StepCommand):
    """Command: the step is done; hand the dossier to the next step of its route."""


class RequestSupplement(StepCommand):
    """Command: ask the citizen for more; the dossier's clock stops."""

    reasons: list[ReasonText] = Field(min_length=1, max_length=20)


class Outcome(str, Enum):
    approved = "approved"
    refused = "refused"


class Resolve(StepCommand):
    """Command: decide the dossier: approve with its result, or refuse with reasons. Where the
    procedure's result is a decision, the approval names the decision the deciding agency
    signed and sent through the documents service (with this dossier's code); other results
    are described by ``result_document``."""

    outcome: Outcome
    result_document: DocumentRef | None = None
    decision_document_id: uuid.UUID | None = Field(
        None, description="The signed decision, as the documents service's POST /v1/documents returned it"
    )
    reasons: list[ReasonText] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _evidence(self) -> "Resolve":
        if self.outcome is Outcome.approved and (self.result_document is None) == (self.decision_document_id is None):
            raise ValueError(
                "an approval needs its result: either decision_document_id (a signed decision sent through "
                "the documents service) or result_document (name, media type, size, sha256), not both"
            )
        if self.outcome is Outcome.refused and not self.reasons:
            raise ValueError("a refusal needs its reasons")
        return self


class ReturnMethod(str, Enum):
    counter = "counter"
    postal = "postal"
    online = "online"


class ReturnResult(StepCommand):
    """Command: the result was handed to the citizen."""

    method: ReturnMethod


class StopProcessing(StepCommand):
    """Command: the agency stops processing (Thông báo dừng xử lý), with reasons."""

    reasons: list[ReasonText] = Field(min_length=1, max_length=20)


class PublicApology(BaseModel):
    """One apology as it is published: the agency, the dossier's code and procedure, the new
    date; never who the citizen is."""

    at: datetime
    dossier_code: str
    procedure_name: str
    agency_code: str
    agency_name: str
    apology: str = Field(description="The apology's line, in Vietnamese, with the new appointment")
