"""Decision 766's score card (100 points in five groups) from the report's figures: pure, and
the points are data (``SCORECARD_766``), not code. The console, the demo and the report's
exports all score with it."""

from __future__ import annotations

from typing import Any


def share(part: int, whole: int) -> float | None:
    return None if not whole else round(100 * part / whole, 1)


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}".replace(".", ",") + "%"


def on_time(c: dict) -> tuple[int, int]:
    """Indicator 2.1 of Decision 766: (handled on time or still within time, handled)."""
    good = c["resolved_early"] + c["resolved_on_time"] + c["in_progress_on_time"]
    return good, good + c["resolved_late"] + c["in_progress_overdue"]


# Decision 766's score card as the national portal's formula document gives it today
# (../shared/DOMAIN.md; the README says where each figure comes from). The points are data:
# (group, indicator, points, share that earns full marks (% of dossiers or procedures), what
# the platform measures it by: (part, whole) of the report's figures, or why it is not measured.
# Below the threshold a score is rate × points ÷ threshold; an indicator not measured scores 0.
GROUPS_766 = {
    1: ("Công khai, minh bạch", 18),
    2: ("Tiến độ, kết quả giải quyết", 20),
    3: ("Số hóa hồ sơ", 22),
    4: ("Cung cấp dịch vụ công trực tuyến", 22),
    5: ("Mức độ hài lòng", 18),
}
SCORECARD_766: tuple[tuple[int, str, float, float, tuple[str, str] | str], ...] = (
    (1, "Công khai TTHC đúng hạn", 6, 100.0, "danh mục chưa ghi ngày quyết định công bố"),
    (1, "Cập nhật, công khai TTHC đúng hạn", 4, 100.0, "danh mục chưa ghi ngày quyết định công bố"),
    (1, "Công khai đầy đủ TTHC", 2, 100.0, ("published_in_full", "procedures_in_force")),
    (1, "Đồng bộ hồ sơ lên Cổng DVC quốc gia", 6, 100.0, ("synced", "received")),
    (2, "Giải quyết trước hạn, đúng hạn (chỉ số 2.1)", 20, 100.0, ("in_time", "handled")),
    (3, "Kết quả điện tử", 6, 80.0, ("results_digitised", "approved")),
    (3, "Số hóa thành phần hồ sơ", 4, 80.0, ("components_digitised", "received")),
    (3, "Bản sao điện tử chứng thực", 2, 80.0, "chưa có chứng thực bản sao điện tử"),
    (3, "Tái sử dụng dữ liệu đã số hóa", 2, 80.0, ("reused", "received")),
    (3, "Kết nối, chia sẻ dữ liệu", 4, 80.0, "chưa kết nối hệ thống chia sẻ dữ liệu"),
    (3, "Khai thác CSDL quốc gia về dân cư", 2, 80.0, ("identity_checked", "received")),
    (3, "Thủ tục kết nối CSDL dân cư", 2, 80.0, ("population_connected", "procedures_in_force")),
    (4, "Hồ sơ trực tuyến toàn trình", 12, 50.0, ("full_online_filed", "full_online_offered")),
    (4, "Thủ tục có phí tích hợp thanh toán", 2, 100.0, ("fee_procedures_online", "fee_procedures")),
    (4, "Thủ tục có thanh toán trực tuyến", 2, 100.0, ("procedures_paid_online", "fee_procedures")),
    (4, "Hồ sơ thanh toán trực tuyến", 6, 100.0, ("paid_online", "fee_online")),
    (5, "Xử lý phản ánh, kiến nghị đúng hạn", 6, 100.0, "chưa tiếp nhận phản ánh, kiến nghị"),
    (5, "Hài lòng về xử lý phản ánh, kiến nghị", 6, 100.0, "chưa tiếp nhận phản ánh, kiến nghị"),
    (
        5,
        "Hài lòng về giải quyết hồ sơ: 100% − (tỷ lệ trễ hạn + tỷ lệ không hài lòng)",
        6,
        90.0,
        ("handled_well", "handled"),
    ),
)
LOST_TO_LATENESS = (2, 5)  # the groups whose lost points the late list names, dossier by dossier


def points(rate: float | None, maximum: float, full_at: float) -> float | None:
    """Below the threshold a score is rate × maximum ÷ threshold; at or above it, full marks."""
    return None if rate is None else round(maximum * min(rate, full_at) / full_at, 2)


def measures(total: dict, catalogue: dict | None = None) -> dict:
    """The report's figures with the derived ones the score card reads."""
    good, handled = on_time(total)
    late = total["resolved_late"] + total["in_progress_overdue"]
    return {
        **total,
        **(catalogue or {}),
        "in_time": good,
        "handled": handled,
        "handled_well": max(handled - late - total.get("rated_dissatisfied", 0), 0),
    }


def scorecard_766(total: dict, catalogue: dict | None = None) -> list[dict]:
    """The five groups of Decision 766 (100 points), each indicator scored from the platform's
    figures or named as not measured and why (0 points, never full marks)."""
    m = measures(total, catalogue)
    groups = []
    for number, (name, maximum) in GROUPS_766.items():
        parts: list[dict[str, Any]] = []
        score = measured = 0.0
        for group, indicator, worth, full_at, source in SCORECARD_766:
            if group != number:
                continue
            if isinstance(source, str):
                parts.append({"name": indicator, "max": worth, "rate": None, "score": None, "why": source})
                continue
            rate = share(m.get(source[0], 0), m.get(source[1], 0))
            got = points(rate, worth, full_at)
            measured += worth
            score += got or 0.0
            parts.append({"name": indicator, "max": worth, "rate": rate, "score": got or 0.0, "why": None})
        basis = "; ".join(
            f"{p['name']}: chưa đo, {p['why']} (0/{p['max']})"
            if p["why"]
            else f"{p['name']}: {percent(p['rate'])} → {p['score']}/{p['max']}"
            for p in parts
        )
        groups.append(
            {
                "group": number,
                "name": name,
                "max": maximum,
                "score": round(score, 1),
                "measured": measured,
                "indicators": parts,
                "basis": f"Đo được {measured:g}/{maximum} điểm. {basis}.",
                "lost_to_lateness": number in LOST_TO_LATENESS,
            }
        )
    return groups


STATE_VI = {"overdue": "quá hạn, đang giải quyết", "resolved_late": "đã giải quyết, trễ hạn"}


def charged_vi(charged_to: list[dict], names: dict[str, str], minutes_vi) -> list[str]:
    """Whose steps made a dossier lose points, in words: the agency, the step, how late."""
    return [
        names.get(c["agency_code"], c["agency_code"])
        + (
            f" (bước {c['step_index'] + 1}: {c['step_name']}, trễ {minutes_vi(c['late_minutes'])})"
            if c["step_name"]
            else ""
        )
        for c in charged_to
    ]
