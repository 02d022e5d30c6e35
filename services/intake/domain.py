"""Intake's pure rules: no I/O here."""

from __future__ import annotations

from datetime import date, datetime

from shared.reference.calendar import LOCAL_TZ


def local_day(moment: datetime) -> date:
    """The office day a moment falls on, in Vietnam's time."""
    return moment.astimezone(LOCAL_TZ).date()


def dossier_code(agency_code: str, day: date, sequence: int) -> str:
    """Agency code + yymmdd + 4-digit daily sequence, e.g. ``000.00.12.H41-210805-0001``."""
    if not 1 <= sequence <= 9999:
        raise ValueError(f"daily sequence {sequence} out of range 1..9999")
    return f"{agency_code}-{day:%y%m%d}-{sequence:04d}"
