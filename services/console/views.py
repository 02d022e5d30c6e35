"""What the pages show, computed from the services' answers: no I/O here, and "now" is
always passed in, so every figure can be checked against a known input."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from shared.reference.calendar import LOCAL_TZ, CalendarNotCovered, WorkingCalendar
from shared.scorecard import STATE_VI, charged_vi, on_time, share

STATUS_VI = {
    "awaiting_payment": "Chờ nộp phí, lệ phí",
    "received": "Đã tiếp nhận",
    "processing": "Đang xử lý",
    "supplement_requested": "Chờ bổ sung",
    "resolved": "Đã có kết quả",
    "returned": "Đã trả kết quả",
    "withdrawn": "Công dân rút hồ sơ",
    "stopped": "Dừng xử lý",
    "refused": "Từ chối tiếp nhận",
}
# Words the services answer with, as people read them: steps, messages, shipments, channels.
WORDS_VI = {
    "pending": "chờ",
    "assigned": "đã giao",
    "in_progress": "đang xử lý",
    "accepted": "đã nhận",
    "done": "xong",
    "sent": "đã gửi",
    "standby": "dự phòng",
    "failed": "thất bại",
    "skipped": "không cần gửi",
    "booking": "đang đặt",
    "picked_up": "đã thu gom",
    "in_transit": "đang chuyển",
    "delivered": "đã phát",
    "returned_to_sender": "chuyển hoàn",
    "rejected": "bị từ chối",
    "online": "trực tuyến",
    "counter": "tại Bộ phận Một cửa",
    "postal": "qua bưu chính",
    "sms": "SMS",
    "zalo": "Zalo",
    "email": "thư điện tử",
    "normal": "thường",
    "urgent": "khẩn",
    "very_urgent": "thượng khẩn",
    "express": "hỏa tốc",
}
LEVEL_VI = {"province": "Cấp tỉnh", "district": "Cấp huyện", "commune": "Cấp xã", "unknown": "Khác"}


def status_vi(status: str | None) -> str:
    return STATUS_VI.get(status or "", status or "—")


def vi(word: str | None) -> str:
    return WORDS_VI.get(word or "", word or "—")


def local(moment: datetime | str | None) -> str:
    """dd/mm/yyyy HH:MM in Vietnam's time."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, str):
        try:
            parsed = datetime.fromisoformat(moment)
        except ValueError:
            return moment
    else:
        parsed = moment
    return parsed.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")


def duration_vi(delta: timedelta) -> str:
    """A lateness or a time left, in days and hours: '2 ngày 3 giờ', '45 phút'."""
    minutes = int(abs(delta.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = ([f"{days} ngày"] if days else []) + ([f"{hours} giờ"] if hours else [])
    return " ".join(parts) if parts else f"{mins} phút"


# ---------------------------------------------------------------- overview


def figures(c: dict) -> dict:
    """One row of the overview: the counts and the shares managers read. An agency's own rate
    judges only the steps it held (a late step elsewhere is not its lateness)."""
    good, handled = on_time(c)
    return {
        **c,
        "on_time_rate": share(good, handled),
        "own_on_time_rate": share(c.get("held", 0) - c.get("held_late", 0), c.get("held", 0)),
        "returned_in_time_rate": share(
            c.get("returned_in_time", 0), c.get("returned_in_time", 0) + c.get("returned_late", 0)
        ),
        "online_share": share(c["online"], c["received"]),
        "bcci_share": share(c["bcci"], c["received"]),
        "resolved": c["resolved_early"] + c["resolved_on_time"] + c["resolved_late"],
        "in_progress": c["in_progress_on_time"] + c["in_progress_overdue"],
    }


BAR_MAX = 24  # a short period's bars stay bars, not blocks


def trend_chart(trend: list[dict], width: int = 640, height: int = 160) -> dict:
    """Geometry of the per-day chart: a bar of dossiers received, and beside it those resolved
    in time and late, per day."""
    if not trend:
        return {"days": [], "width": width, "height": height}
    slot = width / len(trend)
    top = max([t["received"] for t in trend] + [t["resolved_in_time"] + t["resolved_late"] for t in trend])

    def scaled(n: int) -> float:
        return 0.0 if not top else (height - 20) * n / top

    days = []
    for i, t in enumerate(trend):
        resolved_h = scaled(t["resolved_in_time"] + t["resolved_late"])
        late_h = scaled(t["resolved_late"])
        recv_h = scaled(t["received"])
        day = t["day"] if isinstance(t["day"], date) else date.fromisoformat(str(t["day"]))
        days.append(
            {
                "x": round(i * slot, 1),
                "w": round(min(max(slot / 2 - 1, 1), BAR_MAX), 1),
                "label": day.strftime("%d/%m"),
                "received": t["received"],
                "recv_h": round(recv_h, 1),
                "resolved_in_time": t["resolved_in_time"],
                "resolved_late": t["resolved_late"],
                "resolved_h": round(resolved_h, 1),
                "late_h": round(late_h, 1),
            }
        )
    return {"days": days, "width": width, "height": height, "label_every": max(1, len(days) // 10)}


def late_rows(late: list[dict], names: dict[str, str]) -> list[dict]:
    """The dossiers that lost points, as the overview lists them: whose steps overran and by how
    long, in words."""

    def minutes_vi(m: int | None) -> str:
        return "—" if m is None else duration_vi(timedelta(minutes=m))

    return [
        {
            **d,
            "agency_name": names.get(d["agency_code"], d["agency_code"]),
            "handling_name": names.get(d["handling_agency"], d["handling_agency"]),
            "state_vi": STATE_VI[d["state"]],
            "late_vi": minutes_vi(d["late_minutes"]),
            "charged": charged_vi(d["charged_to"], names, minutes_vi),
        }
        for d in late
    ]


# ---------------------------------------------------------------- an agency's work


def work_list(rows: list[dict], now: datetime, calendar: WorkingCalendar) -> dict:
    """An agency's dossiers that are overdue (most late first) and at risk (least time left
    first, within one working day), judged on the agency's own step deadline."""
    overdue, at_risk = [], []
    for r in rows:
        due = r.get("step_due_at") or r.get("due_at")
        if not due:
            continue
        due = datetime.fromisoformat(due) if isinstance(due, str) else due
        row = {**r, "due": due, "status_vi": status_vi(r.get("status"))}
        if due < now:
            overdue.append({**row, "late_by": now - due, "late_vi": duration_vi(now - due)})
        elif _within_a_working_day(calendar, now, due):
            at_risk.append({**row, "left": due - now, "left_vi": duration_vi(due - now)})
    overdue.sort(key=lambda r: r["late_by"], reverse=True)
    at_risk.sort(key=lambda r: r["left"])
    return {"overdue": overdue, "at_risk": at_risk}


def _within_a_working_day(calendar: WorkingCalendar, now: datetime, due: datetime) -> bool:
    try:
        return calendar.working_minutes_between(now, due) <= calendar.office.minutes_per_day
    except CalendarNotCovered:  # beyond the published calendar: count plain hours
        return due - now <= timedelta(days=1)


# ---------------------------------------------------------------- a dossier's trace


def waterfall(spans: list[dict]) -> dict:
    """Rows of a trace waterfall: each span's depth, start and length as shares of the
    whole trace, in start order."""
    if not spans:
        return {"rows": [], "total_ms": 0}
    t0 = min(s["start"] for s in spans)
    t1 = max(s["end"] for s in spans)
    total = max(t1 - t0, 1)
    by_id = {s["span_id"]: s for s in spans}

    def depth(s: dict) -> int:
        d, seen = 0, set()
        while s.get("parent_id") in by_id and s["span_id"] not in seen:
            seen.add(s["span_id"])
            s = by_id[s["parent_id"]]
            d += 1
        return d

    rows = []
    for s in sorted(spans, key=lambda s: s["start"]):
        rows.append(
            {
                "service": s.get("service", "?"),
                "name": s["name"],
                "depth": min(depth(s), 12),
                "left": round(100 * (s["start"] - t0) / total, 2),
                "width": round(max(100 * (s["end"] - s["start"]) / total, 0.3), 2),
                "ms": round((s["end"] - s["start"]) / 1e6, 1),
                "at_ms": round((s["start"] - t0) / 1e6, 1),
                "error": s.get("status") == "ERROR",
            }
        )
    return {"rows": rows, "total_ms": round(total / 1e6, 1)}
