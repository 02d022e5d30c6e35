"""The managers' report: per agency, level, area and province, for a period, what the seeds
and Decision 766 count. The rules are plain functions over a dossier's facts (``tally``); only
``fetch`` reads the database.

Who a figure belongs to:
- **the receiving agency** counts what it received: received in the period, carried over from
  before it, the online and BCCI shares (brought by the post, or its result delivered by the
  post; a delivery that failed is not counted), digitisation at receipt (every component a
  file, a reused result);
- **the handling unit** ("cơ quan thực hiện": the agency of the deciding step) counts how the
  dossier ended, as the national portal does: resolved early (before the due day), on time (by
  the due moment), late; in progress at the end of the period, within time or overdue (a
  period ending in the future is judged now), and due soon (within one working day); returned
  to the citizen by the appointment date or after it; apologies owed and sent; approved, and
  how many of those have their result as a file;
- **every agency that held a step** is charged with its own part: ``held`` dossiers, of which
  ``held_late`` had a step of that agency overrun its own deadline. A district's delay on a
  commune's dossier is the district's, not the commune's (seeds 001 and 004 rank agencies on
  it). The return step is not judged: the portal's end of processing is the decision.

On time at the decision means NgayKetThucXuLy <= NgayHenTra: the due date moved by supplement
pauses but not by apologies. The score (indicator 2.1) uses it, as the national portal does;
``returned_in_time`` / ``returned_late`` show the moment the citizen got the result.

The late list names every dossier that lost points in the period (resolved late, or overdue
and still open), with the steps that overran, their agencies and by how long, a page at a time
(``late_offset``, ``late_limit``) with the count of all of them; codes only, no personal data.
For periods up to 92 days the trend per local day is given (received, resolved in time, late).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.intake import publicity
from shared.reference import Reference
from shared.reference.calendar import LOCAL_TZ

RECEIVED_FIELDS = (
    "received",
    "carried_over",
    "online",
    "bcci",
    "components_digitised",
    "reused",
    "synced",
    "full_online_offered",
    "full_online_filed",
    "identity_checked",
    "fee_online",
    "paid_online",
)
HANDLED_FIELDS = (
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "in_progress_on_time",
    "in_progress_due_soon",
    "in_progress_overdue",
    "returned_in_time",
    "returned_late",
    "apologies_owed",
    "apologies_sent",
    "approved",
    "results_digitised",
    "rated",
    "rated_satisfied",
    "rated_dissatisfied",
)
CHARGED_FIELDS = ("held", "held_late")
OFFICIAL_FIELDS = ("resolved", "resolved_late", "rated", "rated_satisfied", "rated_dissatisfied")
FIELDS = RECEIVED_FIELDS + HANDLED_FIELDS + CHARGED_FIELDS

TREND_MAX_DAYS = 92
# A reporting period as the regime closes it: "2026-11" (month), "2026-Q4" (quarter), "2026" (year),
# of this century (the report's range; year 0 has no 15 December before it).
PERIOD_PATTERN = r"^20\d{2}(-(0[1-9]|1[0-2])|-Q[1-4])?$"
CLOSING_DAY = 15  # Decree 09/2019/NĐ-CP: figures run from the 15th of the month before to the 14th


def regime_period(text: str) -> tuple[datetime, datetime]:
    """[start, end) of a periodic report as the reporting regime (Decree 09/2019/NĐ-CP, art. 12)
    closes it, in Vietnam time: a month runs from the 15th of the month before to the 14th
    (November 2026: 15/10 .. 14/11), a quarter from the 15th of the month before it to the 14th
    of its last month (Q1: 15/12 .. 14/3), a year from 15/12 of the year before to 14/12."""
    year = int(text[:4])
    if len(text) == 4:
        first_month, last_month = 1, 12
    elif text[5] == "Q":
        quarter = int(text[6])
        first_month, last_month = 3 * quarter - 2, 3 * quarter
    else:
        first_month = last_month = int(text[5:7])

    def closing(y: int, m: int) -> datetime:  # the 15th of month m of year y (m may be 0: December before)
        if m == 0:
            y, m = y - 1, 12
        return datetime(y, m, CLOSING_DAY, tzinfo=LOCAL_TZ)

    return closing(year, first_month - 1), closing(year, last_month)


LATE_PAGE = 20  # the late list's default page; a manager pages through all of them


@dataclass(frozen=True)
class StepFacts:
    """One workflow step as intake followed it from routing's events."""

    index: int
    name: str
    kind: str
    agency_code: str
    due_at: datetime
    assigned_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True)
class DossierFacts:
    """What the report needs of one dossier (no personal data)."""

    code: str
    procedure_code: str
    procedure_name: str
    agency_code: str  # the receiving agency
    channel: str
    status: str
    received_at: datetime
    legal_due_at: datetime  # NgayHenTra: moved by supplement pauses, not by apologies
    due_at: datetime
    outcome: str | None = None
    resolved_at: datetime | None = None
    returned_at: datetime | None = None
    apologies: int = 0
    overdue: bool = False
    updated_at: datetime | None = None
    result_delivered_by_post_at: datetime | None = None
    components_digitised: bool = False
    reused: bool = False
    result_file: bool = False
    synced: bool = False  # its receipt reached the national portal
    identity_status: str = "not_checked"  # against the national population database
    paid_online: bool = False  # its fee was paid through the payment platform
    rating: str | None = None  # very_satisfied, satisfied, dissatisfied
    decided_by: str | None = None  # the official named on the resolution
    steps: tuple[StepFacts, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Overrun:
    """A step that overran its own deadline: whose, which, by how long (at the moment judged)."""

    agency_code: str
    step_index: int
    step_name: str
    late_by: timedelta


def handling_unit(d: DossierFacts, ref: Reference) -> str:
    """The agency of the deciding step: from the steps routing assigned, else from the route
    the catalogue gives, else (a procedure no longer in the catalogue) the receiving agency."""
    decided = [s.agency_code for s in d.steps if s.kind == "decide"]
    if decided:
        return decided[-1]
    procedure = ref.catalogue.procedures.get(d.procedure_code)
    if procedure is not None:
        try:
            route = ref.catalogue.route(procedure, d.agency_code)
        except LookupError:
            route = []
        for step in route:
            if step.kind == "decide":
                return step.agency_code
    return d.agency_code


def overruns(d: DossierFacts, judged_at: datetime) -> list[Overrun]:
    """The steps (not the return) that finished after their deadline, or are still open past it
    at ``judged_at``. An open step of a dossier waiting for the citizen's supplement is not
    judged: its clock stopped."""
    found = []
    for s in d.steps:
        if s.kind == "return" or s.assigned_at > judged_at:
            continue
        finished = s.finished_at if s.finished_at is not None and s.finished_at <= judged_at else None
        if finished is None and d.status == "supplement_requested":
            continue
        end = finished or judged_at
        if end > s.due_at:
            found.append(Overrun(s.agency_code, s.index, s.name, end - s.due_at))
    return found


def _held(d: DossierFacts, judged_at: datetime) -> set[str]:
    """The agencies that held a judged step (not the return) of the dossier by ``judged_at``."""
    return {s.agency_code for s in d.steps if s.kind != "return" and s.assigned_at <= judged_at}


def tally(
    dossiers: Iterable[DossierFacts],
    ref: Reference,
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    area: frozenset[str] | None = None,
    late_offset: int = 0,
    late_limit: int = LATE_PAGE,
) -> dict[str, Any]:
    """The report for [start, end), judged at the end or ``now`` if earlier; ``area`` keeps the
    agencies a district or a province oversees (None: all)."""
    judged_at = min(end, now)
    cal = ref.calendar
    per_agency: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    trend = _days(start, end)
    late_ones: list[tuple[DossierFacts, str, list[Overrun]]] = []
    officials: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(OFFICIAL_FIELDS, 0))
    paid_procedures: set[str] = set()
    for d in dossiers:
        unit = handling_unit(d, ref)
        if d.returned_at is not None and start <= d.returned_at < end:
            per_agency[unit]["returned_in_time" if d.returned_at <= d.legal_due_at else "returned_late"] += 1
        if d.received_at >= end or (d.resolved_at is not None and d.resolved_at < start):
            continue  # returned in the period only
        if d.status in ("withdrawn", "stopped") and d.updated_at is not None and d.updated_at < start:
            continue
        received, handled = per_agency[d.agency_code], per_agency[unit]
        if d.received_at >= start:
            _count(trend, d.received_at, "received")
            received["received"] += 1
            received["online"] += d.channel == "online"
            received["bcci"] += d.channel == "postal" or d.result_delivered_by_post_at is not None
            received["components_digitised"] += d.components_digitised
            received["reused"] += d.reused
            received["synced"] += d.synced
            received["identity_checked"] += d.identity_status != "not_checked"
            procedure = ref.catalogue.procedures.get(d.procedure_code)
            if procedure is not None and procedure.fee_vnd and d.channel == "online":
                received["fee_online"] += 1
                received["paid_online"] += d.paid_online
                if d.paid_online:
                    paid_procedures.add(d.procedure_code)
            if procedure is not None and procedure.online_level == "full":
                received["full_online_offered"] += 1
                received["full_online_filed"] += d.channel == "online"
        else:
            received["carried_over"] += 1
        late = judged = False
        if d.resolved_at is not None and d.resolved_at < end:
            judged = True
            due = d.legal_due_at
            if d.resolved_at.astimezone(LOCAL_TZ).date() < due.astimezone(LOCAL_TZ).date():
                handled["resolved_early"] += 1
            elif d.resolved_at <= due:
                handled["resolved_on_time"] += 1
            else:
                handled["resolved_late"] += 1
                late = True
            handled["approved"] += d.outcome == "approved"
            handled["results_digitised"] += d.outcome == "approved" and d.result_file
            if d.rating is not None:
                handled["rated"] += 1
                handled["rated_dissatisfied" if d.rating == "dissatisfied" else "rated_satisfied"] += 1
            if d.decided_by:
                o = officials[(d.decided_by, unit)]
                o["resolved"] += 1
                o["resolved_late"] += late
                o["rated"] += d.rating is not None
                o["rated_satisfied"] += d.rating in ("very_satisfied", "satisfied")
                o["rated_dissatisfied"] += d.rating == "dissatisfied"
            _count(trend, d.resolved_at, "resolved_late" if late else "resolved_in_time")
        elif d.status not in ("withdrawn", "stopped"):
            judged = True
            if d.legal_due_at >= judged_at:
                handled["in_progress_on_time"] += 1
                handled["in_progress_due_soon"] += (
                    cal.working_minutes_between(judged_at, d.legal_due_at) <= cal.office.minutes_per_day
                )
            else:
                handled["in_progress_overdue"] += 1
                late = True
        if late:
            handled["apologies_owed"] += 1
            handled["apologies_sent"] += d.apologies > 0
        if not judged:
            continue
        overran = overruns(d, judged_at)
        late_agencies = {o.agency_code for o in overran}
        for holder in _held(d, judged_at):
            per_agency[holder]["held"] += 1
            per_agency[holder]["held_late"] += holder in late_agencies
        if late:
            late_ones.append((d, unit, overran))
    if area is not None:
        per_agency = {code: counts for code, counts in per_agency.items() if code in area}
        late_ones = [(d, unit, o) for d, unit, o in late_ones if unit in area or any(x.agency_code in area for x in o)]
        officials = defaultdict(dict, {k: v for k, v in officials.items() if k[1] in area})
    agencies = []
    by_level: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for code, counts in sorted(per_agency.items()):
        agency = ref.catalogue.agencies.get(code)
        level = agency.level if agency else "unknown"
        agencies.append({"agency_code": code, "agency_name": agency.name if agency else code, "level": level, **counts})
        for k, v in counts.items():
            by_level[level][k] += v
    total = {k: sum(counts[k] for counts in per_agency.values()) for k in FIELDS}
    late_ones.sort(key=lambda x: (x[0].legal_due_at, x[0].code))
    return {
        "from": start,
        "to": end,
        "judged_at": judged_at,
        "agencies": agencies,
        "levels": [{"level": lvl, **by_level[lvl]} for lvl in ref.catalogue.levels if lvl in by_level],
        "total": total,
        "trend": list(trend.values()),
        # the catalogue in force on the day judged: publicity and online service (groups 1 and 4)
        "catalogue": {
            **publicity.catalogue_figures(ref.catalogue.in_force(judged_at.astimezone(LOCAL_TZ).date())),
            "procedures_paid_online": len(paid_procedures),
        },
        # the officials who decided dossiers in the period: how many, late, and how they were rated
        "officials": [
            {"official": name, "agency_code": agency, **counts} for (name, agency), counts in sorted(officials.items())
        ],
        "late_total": len(late_ones),
        "late": [
            _late_entry(d, unit, o, judged_at) for d, unit, o in late_ones[late_offset : late_offset + late_limit]
        ],
    }


def _late_entry(d: DossierFacts, unit: str, overran: list[Overrun], judged_at: datetime) -> dict[str, Any]:
    """A dossier that lost points: which, where it stands, whose steps overran and by how long."""
    ended = d.resolved_at if d.resolved_at is not None and d.resolved_at <= judged_at else None
    return {
        "code": d.code,
        "procedure_name": d.procedure_name,
        "agency_code": d.agency_code,
        "handling_agency": unit,
        "status": d.status,
        "state": "resolved_late" if ended else "overdue",
        "received_at": d.received_at,
        "legal_due_at": d.legal_due_at,
        "due_at": d.due_at,
        "resolved_at": ended,
        "late_minutes": int(((ended or judged_at) - d.legal_due_at).total_seconds() // 60),
        "apologies": d.apologies,
        "charged_to": [
            {
                "agency_code": o.agency_code,
                "step_index": o.step_index,
                "step_name": o.step_name,
                "late_minutes": int(o.late_by.total_seconds() // 60),
            }
            for o in overran
        ]
        # a dossier late with no step overrunning (followed before steps were kept): its handling unit's
        or [{"agency_code": unit, "step_index": None, "step_name": None, "late_minutes": None}],
    }


class AreaRefused(Exception):
    """The caller may not see that area (403), or there is no such agency (422)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def area_for(roles: frozenset[str], agency: str | None, asked: str | None, ref: Reference) -> str | None:
    """Which agency's area a report covers (None: the whole province). An operator or a
    connected system without an agency sees all; a manager sees the agencies under their own
    (a district's manager the district's departments and communes, the province's all); an
    official sees their own agency. ``asked`` narrows it to an agency's area within that."""
    catalogue = ref.catalogue
    if asked is not None and asked not in catalogue.agencies:
        raise AreaRefused(422, f"no agency {asked!r} in the catalogue")
    if "operator" in roles or agency is None:
        return asked
    if "manager" in roles:
        if asked is None or asked in catalogue.area(agency):
            return asked or agency
        raise AreaRefused(403, f"{asked} is outside the area of {agency}")
    if asked is None or asked == agency:
        return agency
    raise AreaRefused(403, f"an official sees the report of their own agency ({agency}) only")


def area_codes(area: str | None, roles: frozenset[str], ref: Reference) -> frozenset[str] | None:
    """The agencies an area covers: an official's own agency alone, a manager's or an asked
    area everything under it."""
    if area is None:
        return None
    if "manager" not in roles and "operator" not in roles:
        return frozenset({area})
    return ref.catalogue.area(area)


async def fetch(pool: asyncpg.Pool, start: datetime, end: datetime) -> list[DossierFacts]:
    """The dossiers a report of [start, end) looks at, with their steps."""
    rows = await pool.fetch(
        "SELECT id, code, procedure_code, procedure_name, agency_code, channel, status, outcome, received_at, "
        "due_at, legal_due_at, resolved_at, returned_at, apologies, overdue, updated_at, "
        "result_delivered_by_post_at, "
        # every component came as a file (a dossier with no component counts as not digitised)
        "(jsonb_array_length(documents) > 0 AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(documents) e "
        "  WHERE e->>'sha256' IS NULL)) AS components_digitised, "
        "EXISTS (SELECT 1 FROM jsonb_array_elements(documents) e WHERE e->>'reused_from' IS NOT NULL) AS reused, "
        "EXISTS (SELECT 1 FROM dossier_files f WHERE f.dossier_id = dossiers.id AND f.role = 'result') AS result_file, "
        "(SELECT rating FROM ratings WHERE ratings.dossier_id = dossiers.id) AS rating, decided_by, "
        "EXISTS (SELECT 1 FROM portal_updates p WHERE p.dossier_id = dossiers.id AND p.seq = 1 AND p.status = 'sent') "
        "AS synced, identity_status, paid_online_at IS NOT NULL AS paid_online "
        "FROM dossiers WHERE received_at < $2 "
        "AND (resolved_at IS NULL OR resolved_at >= $1 OR returned_at >= $1) "
        "AND NOT (status IN ('withdrawn', 'stopped') AND updated_at < $1)",
        start,
        end,
    )
    steps: dict[Any, list[StepFacts]] = defaultdict(list)
    for s in await pool.fetch(
        "SELECT dossier_id, idx, name, kind, agency_code, due_at, assigned_at, finished_at FROM dossier_steps "
        "WHERE dossier_id = ANY($1::uuid[]) ORDER BY dossier_id, idx",
        [r["id"] for r in rows],
    ):
        steps[s["dossier_id"]].append(
            StepFacts(s["idx"], s["name"], s["kind"], s["agency_code"], s["due_at"], s["assigned_at"], s["finished_at"])
        )
    return [
        DossierFacts(
            **{k: v for k, v in r.items() if k != "id"},
            steps=tuple(steps.get(r["id"], ())),
        )
        for r in rows
    ]


async def compute(
    pool: asyncpg.Pool,
    ref: Reference,
    start: datetime,
    end: datetime,
    now: datetime,
    late_offset: int = 0,
    late_limit: int = LATE_PAGE,
    area: frozenset[str] | None = None,
) -> dict[str, Any]:
    return tally(
        await fetch(pool, start, end),
        ref,
        start,
        end,
        now,
        area=area,
        late_offset=late_offset,
        late_limit=late_limit,
    )


def _days(start: datetime, end: datetime) -> dict:
    """One empty trend row per local day of the period (none for periods over TREND_MAX_DAYS)."""
    first, last = start.astimezone(LOCAL_TZ).date(), (end - timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()
    if (last - first).days >= TREND_MAX_DAYS:
        return {}
    return {
        first + timedelta(days=i): {
            "day": first + timedelta(days=i),
            "received": 0,
            "resolved_in_time": 0,
            "resolved_late": 0,
        }
        for i in range((last - first).days + 1)
    }


def _count(trend: dict, at: datetime, field: str) -> None:
    row = trend.get(at.astimezone(LOCAL_TZ).date())
    if row is not None:
        row[field] += 1


def render(report: dict) -> str:
    """The report as a table, with the shares and the on-time rate the seeds quote."""
    head = (
        f"{'':<48} {'recv':>5} {'carry':>5} {'early':>5} {'ontime':>6} {'late':>5} {'open':>5} {'overdue':>7} "
        f"{'online%':>7} {'BCCI%':>6} {'ontime%':>7} {'apology owed/sent':>17} {'files%':>6} {'result%':>7} {'reuse':>5} {'own late/held':>13} {'ret.late':>8}"
    )

    def line(label: str, c: dict) -> str:
        received = c["received"] or 1
        handled = (
            c["resolved_early"]
            + c["resolved_on_time"]
            + c["resolved_late"]
            + c["in_progress_on_time"]
            + c["in_progress_overdue"]
        )
        good = c["resolved_early"] + c["resolved_on_time"] + c["in_progress_on_time"]
        rate = f"{100 * good / handled:.1f}" if handled else "-"
        results = f"{100 * c['results_digitised'] / c['approved']:.1f}" if c["approved"] else "-"
        return (
            f"{label[:48]:<48} {c['received']:>5} {c['carried_over']:>5} {c['resolved_early']:>5} {c['resolved_on_time']:>6} "
            f"{c['resolved_late']:>5} {c['in_progress_on_time']:>5} {c['in_progress_overdue']:>7} "
            f"{100 * c['online'] / received:>7.1f} {100 * c['bcci'] / received:>6.1f} {rate:>7} "
            f"{c['apologies_owed']:>8}/{c['apologies_sent']:<8} "
            f"{100 * c['components_digitised'] / received:>6.1f} {results:>7} {c['reused']:>5} "
            f"{c['held_late']:>6}/{c['held']:<6} {c['returned_late']:>8}"
        )

    out = [f"Report {report['from']} .. {report['to']}", head]
    out += [line(f"{a['agency_name']} ({a['level']})", a) for a in report["agencies"]]
    out.append("")
    out += [line(f"level: {lv['level']}", lv) for lv in report["levels"]]
    out.append(line("TOTAL", report["total"]))
    if report["late"]:
        out += ["", f"Dossiers that lost points ({report['late_total']}), whose step overran:"]
        for d in report["late"]:
            charged = ", ".join(
                f"{c['agency_code']} step {c['step_index']} +{c['late_minutes']} min"
                if c["step_name"]
                else c["agency_code"]
                for c in d["charged_to"]
            )
            out.append(f"  {d['code']:<28} {d['state']:<14} +{d['late_minutes']:>6} min  {charged}")
    return "\n".join(out)
