"""Intake's pure rules: no I/O here."""

from __future__ import annotations

import secrets
from datetime import date, datetime

from shared.errors import Conflict
from shared.reference.calendar import LOCAL_TZ


def local_day(moment: datetime) -> date:
    """The office day a moment falls on, in Vietnam's time."""
    return moment.astimezone(LOCAL_TZ).date()


class NumbersExhausted(Conflict):
    """The agency received 9,999 dossiers today: the code format has no room for more."""

    errors = ({"field": "agency_code", "reason": "no dossier number left today"},)


def dossier_code(agency_code: str, day: date, sequence: int) -> str:
    """Agency code + yymmdd + 4-digit daily sequence, e.g. ``000.00.12.H41-210805-0001``."""
    if not 1 <= sequence <= 9999:
        raise NumbersExhausted(
            f"{agency_code} has used all 9999 dossier numbers of {day:%d/%m/%Y}; "
            "submit again tomorrow or at another receiving agency"
        )
    return f"{agency_code}-{day:%y%m%d}-{sequence:04d}"


LOOKUP_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: read off a paper slip
LOOKUP_KEY_LENGTH = 8


def new_lookup_key() -> str:
    """A citizen's lookup key: 8 characters of 31, about 10^12 possibilities."""
    return "".join(secrets.choice(LOOKUP_ALPHABET) for _ in range(LOOKUP_KEY_LENGTH))
