"""Small helpers for tests: reading headers, and what the demo's clients already do."""

from __future__ import annotations

from ops.clients import (  # noqa: F401 - re-exported for tests
    APPLICANT, COMMUNE, OFFICIAL, RESULT, Agencies, documents_for, eventually, submission,
)


def header(record, name: str) -> str | None:
    for k, v in record.headers or ():
        if k == name:
            return v.decode("utf-8")
    return None
