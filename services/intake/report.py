"""The managers' report: per receiving agency and level, for a period, what the seeds count.

- received in the period, and carried over from before it;
- resolved in the period: early (before the due day), on time (by the due moment), late;
  on time means NgayKetThucXuLy <= NgayHenTra, the due date moved by supplement pauses but
  not by apologies;
- in progress at the end of the period: still within time, or overdue; a period that ends in
  the future is judged now (a dossier due at 17:00 today is not late at 10:00); of those
  within time, how many are due soon (within one working day: at risk);
- online share and BCCI share of those received: brought by the post (a postal dossier is
  received only when the post delivered it to the counter) or its result delivered by the
  post; a result the post failed to deliver is not counted;
- apologies owed (late dossiers) and sent;
- digitisation (Decision 766 group 3): of those received, how many had every component as a
  file at receipt, and how many reused an earlier digitised result; of those approved in the
  period, how many have their result as a file;
- for periods up to 92 days, the trend per local day (received, resolved in time, late);
- the in-progress dossiers that are late, most late first (codes only, no personal data), a
  page at a time (``late_offset``, ``late_limit``), with how many there are in all.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import asyncpg

from shared.reference import Reference
from shared.reference.calendar import LOCAL_TZ

FIELDS = (
    "received",
    "carried_over",
    "resolved_early",
    "resolved_on_time",
    "resolved_late",
    "in_progress_on_time",
    "in_progress_due_soon",
    "in_progress_overdue",
    "online",
    "bcci",
    "apologies_owed",
    "apologies_sent",
    "components_digitised",
    "reused",
    "approved",
    "results_digitised",
)
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


async def compute(
    pool: asyncpg.Pool,
    ref: Reference,
    start: datetime,
    end: datetime,
    now: datetime,
    late_offset: int = 0,
    late_limit: int = LATE_PAGE,
) -> dict:
    judged_at = min(end, now)
    cal = ref.calendar
    rows = await pool.fetch(
        "SELECT code, procedure_name, agency_code, channel, result_delivery, status, outcome, received_at, due_at, legal_due_at, "
        "resolved_at, apologies, overdue, updated_at, result_delivered_by_post_at, "
        # every component came as a file (a dossier with no component counts as not digitised)
        "(jsonb_array_length(documents) > 0 AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(documents) e "
        "  WHERE e->>'sha256' IS NULL)) AS components_digitised, "
        "EXISTS (SELECT 1 FROM jsonb_array_elements(documents) e WHERE e->>'reused_from' IS NOT NULL) AS reused, "
        "EXISTS (SELECT 1 FROM dossier_files f WHERE f.dossier_id = dossiers.id AND f.role = 'result') AS result_file "
        "FROM dossiers WHERE received_at < $2 AND (resolved_at IS NULL OR resolved_at >= $1) "
        "AND NOT (status IN ('withdrawn', 'stopped') AND updated_at < $1)",
        start,
        end,
    )
    per_agency: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    trend = _days(start, end)
    late_ones = []
    for r in rows:
        c = per_agency[r["agency_code"]]
        due = r["legal_due_at"]
        if r["received_at"] >= start:
            _count(trend, r["received_at"], "received")
            c["received"] += 1
            c["online"] += r["channel"] == "online"
            c["bcci"] += r["channel"] == "postal" or r["result_delivered_by_post_at"] is not None
            c["components_digitised"] += r["components_digitised"]
            c["reused"] += r["reused"]
        else:
            c["carried_over"] += 1
        late = False
        if r["resolved_at"] is not None and r["resolved_at"] < end:
            if r["resolved_at"].astimezone(LOCAL_TZ).date() < due.astimezone(LOCAL_TZ).date():
                c["resolved_early"] += 1
            elif r["resolved_at"] <= due:
                c["resolved_on_time"] += 1
            else:
                c["resolved_late"] += 1
                late = True
            c["approved"] += r["outcome"] == "approved"
            c["results_digitised"] += r["outcome"] == "approved" and r["result_file"]
            _count(trend, r["resolved_at"], "resolved_late" if late else "resolved_in_time")
        elif r["status"] not in ("withdrawn", "stopped"):
            if due >= judged_at:
                c["in_progress_on_time"] += 1
                c["in_progress_due_soon"] += cal.working_minutes_between(judged_at, due) <= cal.office.minutes_per_day
            else:
                c["in_progress_overdue"] += 1
                late = True
            if late or r["overdue"]:
                late_ones.append(r)
        if late:
            c["apologies_owed"] += 1
            c["apologies_sent"] += r["apologies"] > 0
    agencies = []
    by_level: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))
    for code, counts in sorted(per_agency.items()):
        agency = ref.catalogue.agencies.get(code)
        level = agency.level if agency else "unknown"
        agencies.append({"agency_code": code, "agency_name": agency.name if agency else code, "level": level, **counts})
        for k, v in counts.items():
            by_level[level][k] += v
    total = {k: sum(counts[k] for counts in per_agency.values()) for k in FIELDS}
    late_ones.sort(key=lambda r: r["legal_due_at"])
    return {
        "from": start,
        "to": end,
        "judged_at": judged_at,
        "agencies": agencies,
        "levels": [{"level": lvl, **by_level[lvl]} for lvl in ref.catalogue.levels if lvl in by_level],
        "total": total,
        "trend": list(trend.values()),
        "late_total": len(late_ones),
        "late_in_progress": [
            {
                "code": r["code"],
                "procedure_name": r["procedure_name"],
                "agency_code": r["agency_code"],
                "status": r["status"],
                "received_at": r["received_at"],
                "legal_due_at": r["legal_due_at"],
                "due_at": r["due_at"],
                "apologies": r["apologies"],
            }
            for r in late_ones[late_offset : late_offset + late_limit]
        ],
    }


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
        f"{'online%':>7} {'BCCI%':>6} {'ontime%':>7} {'apology owed/sent':>17} {'files%':>6} {'result%':>7} {'reuse':>5}"
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
            f"{100 * c['components_digitised'] / received:>6.1f} {results:>7} {c['reused']:>5}"
        )

    out = [f"Report {report['from']} .. {report['to']}", head]
    out += [line(f"{a['agency_name']} ({a['level']})", a) for a in report["agencies"]]
    out.append("")
    out += [line(f"level: {lv['level']}", lv) for lv in report["levels"]]
    out.append(line("TOTAL", report["total"]))
    return "\n".join(out)
