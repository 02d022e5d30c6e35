"""The monthly report on official documents, as provinces compile it (on the 25th in the
seeds): per receiving agency and per official, documents received, viewed, viewed on time,
finished on time and the viewing rate (officials under 75% named); per sending agency, the
outgoing documents sent electronically and signed with both signatures, as a share of all.

Officials are those who opened a copy, and every official the staff directory lists at a
receiving agency: one who never opened anything is named with a rate of 0.

Outgoing documents are all electronic here by construction; "signed with both" means at least
one recipient's copy passed the check of both signatures."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time

import asyncpg

from services.documents.domain import VIEWING_RATE_FLOOR, viewing_rate
from shared.reference import Reference
from shared.reference.calendar import LOCAL_TZ
from shared.staff import StaffDirectory


def month_bounds(month: date) -> tuple[datetime, datetime]:
    first = month.replace(day=1)
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return datetime.combine(first, time(), LOCAL_TZ), datetime.combine(following, time(), LOCAL_TZ)


async def monthly(
    pool: asyncpg.Pool, ref: Reference, month: date, now: datetime, staff: StaffDirectory | None = None
) -> dict:
    start, end = month_bounds(month)
    judged = min(end, now)
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        incoming = await conn.fetch(
            "SELECT document_id, recipient_agency, arrived_at, view_due_at, process_due_at, done_at FROM deliveries "
            "WHERE arrived_at >= $1 AND arrived_at < $2",
            start,
            end,
        )
        views = await conn.fetch(
            "SELECT v.document_id, v.recipient_agency, v.username, v.viewed_at FROM views v JOIN deliveries d "
            "ON d.document_id = v.document_id AND d.recipient_agency = v.recipient_agency "
            "WHERE d.arrived_at >= $1 AND d.arrived_at < $2",
            start,
            end,
        )
        outgoing = await conn.fetch(
            "SELECT doc.sender_agency, doc.id, EXISTS (SELECT 1 FROM delivery_statuses s WHERE s.document_id = doc.id "
            "AND s.status = 'arrived') AS signed_both FROM documents doc WHERE doc.created_at >= $1 AND doc.created_at < $2",
            start,
            end,
        )
    due = {(r["document_id"], r["recipient_agency"]): r["view_due_at"] for r in incoming}
    first_view: dict[tuple, datetime] = {}
    by_official: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: {"viewed": 0, "viewed_on_time": 0})
    for v in views:
        key = (v["document_id"], v["recipient_agency"])
        first_view[key] = min(first_view.get(key, v["viewed_at"]), v["viewed_at"])
        o = by_official[(v["recipient_agency"], v["username"])]
        o["viewed"] += 1
        o["viewed_on_time"] += due[key] is not None and v["viewed_at"] <= due[key]
    agencies: dict[str, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(
            ("received", "viewed", "viewed_on_time", "finished", "finished_on_time", "overdue_unviewed"), 0
        )
    )
    for r in incoming:
        a = agencies[r["recipient_agency"]]
        key = (r["document_id"], r["recipient_agency"])
        a["received"] += 1
        if key in first_view:
            a["viewed"] += 1
            a["viewed_on_time"] += r["view_due_at"] is not None and first_view[key] <= r["view_due_at"]
        elif r["view_due_at"] is not None and r["view_due_at"] < judged:
            a["overdue_unviewed"] += 1
        if r["done_at"] is not None and r["done_at"] < end:
            a["finished"] += 1
            a["finished_on_time"] += r["process_due_at"] is not None and r["done_at"] <= r["process_due_at"]
    sent: dict[str, dict[str, int]] = defaultdict(lambda: {"outgoing": 0, "sent_electronically": 0, "signed_both": 0})
    for d in outgoing:
        s = sent[d["sender_agency"]]
        s["outgoing"] += 1
        s["sent_electronically"] += 1
        s["signed_both"] += d["signed_both"]

    def name(code: str) -> str:
        agency = ref.catalogue.agencies.get(code)
        return agency.name if agency else code

    for agency in agencies:  # who should have read and never did
        for person in staff.officials(agency) if staff else ():
            by_official[(agency, person.username)]
    officials = []
    for (agency, username), o in sorted(by_official.items()):
        rate = viewing_rate(o["viewed"], agencies[agency]["received"])
        officials.append(
            {
                "agency_code": agency,
                "username": username,
                "received": agencies[agency]["received"],
                **o,
                "viewing_rate": rate,
                "below_floor": rate is not None and rate < VIEWING_RATE_FLOOR,
            }
        )
    return {
        "month": start.date().isoformat()[:7],
        "from": start,
        "to": end,
        "judged_at": judged,
        "viewing_rate_floor": VIEWING_RATE_FLOOR,
        "incoming": [_incoming(c, name(c), a) for c, a in sorted(agencies.items())],
        "officials": officials,
        "outgoing": [
            {
                "agency_code": c,
                "agency_name": name(c),
                **s,
                "signed_both_share": None if not s["outgoing"] else round(100 * s["signed_both"] / s["outgoing"], 1),
            }
            for c, s in sorted(sent.items())
        ],
    }


def within(report: dict, area: frozenset[str]) -> dict:
    """The report limited to the agencies of ``area`` (a manager's own)."""
    return {
        **report,
        **{
            part: [row for row in report[part] if row["agency_code"] in area]
            for part in ("incoming", "officials", "outgoing")
        },
    }


def _incoming(code: str, name: str, counts: dict) -> dict:
    rate = viewing_rate(counts["viewed"], counts["received"])
    return {
        "agency_code": code,
        "agency_name": name,
        **counts,
        "viewing_rate": rate,
        "below_floor": rate is not None and rate < VIEWING_RATE_FLOOR,
    }


def render(report: dict) -> str:
    """The report as tables for `lgsp report documents`."""
    lines = [
        f"Official documents, {report['month']} (viewing rate floor {report['viewing_rate_floor']:.0f}%)",
        "",
        f"{'incoming':<48} {'recv':>5} {'viewed':>6} {'in time':>7} {'rate%':>6} {'done':>5} {'in time':>7}",
    ]
    for a in report["incoming"]:
        rate = "-" if a["viewing_rate"] is None else f"{a['viewing_rate']:.1f}"
        flag = "  < floor" if a["below_floor"] else ""
        lines.append(
            f"{a['agency_name'][:48]:<48} {a['received']:>5} {a['viewed']:>6} {a['viewed_on_time']:>7} {rate:>6} "
            f"{a['finished']:>5} {a['finished_on_time']:>7}{flag}"
        )
    lines += ["", f"{'official':<48} {'recv':>5} {'viewed':>6} {'in time':>7} {'rate%':>6}"]
    for o in report["officials"]:
        flag = "  NAMED: under the floor" if o["below_floor"] else ""
        lines.append(
            f"{o['username'][:48]:<48} {o['received']:>5} {o['viewed']:>6} {o['viewed_on_time']:>7} "
            f"{o['viewing_rate'] or 0:>6.1f}{flag}"
        )
    lines += ["", f"{'outgoing':<48} {'sent':>5} {'electronic':>10} {'both signatures':>15} {'share%':>7}"]
    for s in report["outgoing"]:
        lines.append(
            f"{s['agency_name'][:48]:<48} {s['outgoing']:>5} {s['sent_electronically']:>10} {s['signed_both']:>15} "
            f"{s['signed_both_share'] or 0:>7.1f}"
        )
    return "\n".join(lines)
