"""The documents service's HTTP contract: every field bounded."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.events import CleanText

AgencyCodeText = Annotated[str, StringConstraints(min_length=1, max_length=35)]
Sha256 = Annotated[str, StringConstraints(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]


class SendDocument(CleanText):
    agency_code: AgencyCodeText = Field(description="The sending agency: the official's own")
    number: str = Field(min_length=1, max_length=60, description="Số, ký hiệu", examples=["123/UBND-VP"])
    issued_on: date
    summary: str = Field(
        min_length=1, max_length=2000, description="Trích yếu", examples=["V/v đề nghị cấp giấy phép xây dựng"]
    )
    doc_type: str = Field(min_length=1, max_length=100, examples=["Công văn"])
    urgency: Literal["normal", "urgent", "very_urgent", "express"] = "normal"
    classification: Literal["none", "confidential", "secret", "top_secret"] = Field(
        "none", description="Anything but 'none' is refused: classified documents are not exchanged electronically"
    )
    recipients: list[AgencyCodeText] = Field(min_length=1, max_length=100)
    file_sha256: Sha256 = Field(description="The signed PDF, uploaded first to /v1/documents/files")
    dossier_code: str | None = Field(None, max_length=60, description="The dossier this document is about, if any")


class UpdateDocument(CleanText):
    agency_code: AgencyCodeText
    file_sha256: Sha256
    summary: str | None = Field(None, min_length=1, max_length=2000)


class SenderAct(CleanText):
    agency_code: AgencyCodeText


class MoveDelivery(CleanText):
    status: Literal["accepted", "refused", "assigned", "in_processing", "done"]
    reason: str | None = Field(None, min_length=1, max_length=2000)


class FileStored(CleanText):
    sha256: Sha256
    size: int = Field(ge=1, le=200_000_000)
    location: str = Field(max_length=300)


class DocumentCreated(CleanText):
    id: uuid.UUID
    version: int = Field(ge=1, le=1000)
    at: datetime
