"""Intake's HTTP contract: the commands portals and counters send, and what they get back."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.intake.domain import AGENCY_CODE_RE, PHONE_RE


class Channel(str, Enum):
    online = "online"
    counter = "counter"
    postal = "postal"


class ApplicantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    full_name: str = Field(min_length=1, max_length=200, examples=["Nguyễn Thị Hồng Nhung"])
    id_number: str = Field(description="12-digit personal ID number (CCCD)", examples=["001203004567"])
    phone: str = Field(description="Mobile number, 10 digits starting with 0", examples=["0912345678"])
    email: str | None = Field(None, max_length=200)
    address: str = Field(min_length=1, max_length=500, examples=["Số 5, phố Lê Lợi, phường Đông Thành, Ninh Bình"])

    @field_validator("id_number")
    @classmethod
    def _id_number(cls, v: str) -> str:
        if not (len(v) == 12 and v.isdigit()):
            raise ValueError("must be exactly 12 digits")
        return v

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        if not PHONE_RE.match(v):
            raise ValueError("must be a Vietnamese mobile number: 10 digits starting with 03, 05, 07, 08 or 09")
        return v


class SubmitDossier(BaseModel):
    """Command: submit a dossier for an administrative procedure."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    channel: Channel
    procedure_code: str = Field(min_length=1, max_length=50, examples=["1.001193"])
    agency_code: str = Field(max_length=35, examples=["000.00.12.H41"])
    applicant: ApplicantIn

    @field_validator("agency_code")
    @classmethod
    def _agency_code(cls, v: str) -> str:
        if not AGENCY_CODE_RE.match(v):
            raise ValueError("must be a dotted agency identifier code such as 000.00.12.H41")
        return v


class DossierOut(BaseModel):
    id: uuid.UUID
    code: str
    procedure_code: str
    agency_code: str
    channel: Channel
    status: str
    received_at: datetime
    trace_id: str | None
