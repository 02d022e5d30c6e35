"""``lgsp report``: the managers' report, asked of intake and printed as a table."""

from __future__ import annotations

import re
import sys
from datetime import datetime, time, timedelta

import httpx

from ops.identity import IDENTITIES, TokenRefused
from services.intake.report import PERIOD_PATTERN, regime_period, render
from shared.reference.calendar import LOCAL_TZ


def _moment(text: str | None, default: datetime) -> datetime:
    if not text:
        return default
    value = (
        datetime.fromisoformat(text) if "T" in text else datetime.combine(datetime.fromisoformat(text).date(), time())
    )
    return value if value.tzinfo else value.replace(tzinfo=LOCAL_TZ)


def period(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    today = datetime.combine(now.astimezone(LOCAL_TZ).date(), time(), LOCAL_TZ)
    s = _moment(start, today)
    return s, _moment(end, s + timedelta(days=1))


def fetch_report(intake_url: str, start: datetime, end: datetime, auth: httpx.Auth | None = None) -> dict:
    """The managers' report, asked for as ``auth`` (by default the operator signed in)."""
    r = httpx.get(
        f"{intake_url}/v1/reports",
        params={"from": start.isoformat(), "to": end.isoformat()},
        timeout=30,
        auth=auth or IDENTITIES.at_the_command_line,
    )
    r.raise_for_status()
    return r.json()


def print_report(intake_url: str, start: str | None, end: str | None, now: datetime, regime: str | None = None) -> int:
    """``regime``: a period as the reporting regime closes it (``2026-11``, ``2026-Q4``, ``2026``)."""
    if regime is not None:
        if not re.match(PERIOD_PATTERN, regime):
            print(f"--period {regime!r}: expected YYYY-MM, YYYY-Qn or YYYY", file=sys.stderr)
            return 2
        s, e = regime_period(regime)
    else:
        s, e = period(start, end, now)
    try:
        print(render(fetch_report(intake_url, s, e)))
    except (httpx.HTTPError, TokenRefused) as exc:
        print(f"cannot get the report from intake at {intake_url}: {exc}", file=sys.stderr)
        return 1
    return 0


def print_documents_report(documents_url: str, month: str) -> int:
    """The monthly documents report, asked for as the person at the command line."""
    from services.documents.report import render as render_documents

    try:
        r = httpx.get(
            f"{documents_url}/v1/reports/documents",
            params={"month": month},
            timeout=30,
            auth=IDENTITIES.at_the_command_line,
        )
        r.raise_for_status()
        print(render_documents(r.json()))
    except (httpx.HTTPError, TokenRefused) as exc:
        print(f"cannot get the documents report from {documents_url}: {exc}", file=sys.stderr)
        return 1
    return 0
