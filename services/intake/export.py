"""The report as the files managers already use: CSV (UTF-8 with a byte-order mark, so a
spreadsheet opens Vietnamese headers as they are) and .xlsx (openpyxl): one row per agency,
then the levels and the total; the .xlsx adds Decision 766's score card and every dossier that
lost points. Pure: a report in, bytes out."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

from services.intake.report import FIELDS
from shared.reference.calendar import LOCAL_TZ
from shared.scorecard import STATE_VI, charged_vi, on_time, scorecard_766, share

HEADERS_VI = {
    "received": "Tiếp nhận trong kỳ",
    "carried_over": "Kỳ trước chuyển sang",
    "online": "Nộp trực tuyến",
    "bcci": "Qua bưu chính công ích",
    "components_digitised": "Số hóa đủ thành phần",
    "reused": "Tái sử dụng kết quả số hóa",
    "synced": "Đã đồng bộ Cổng DVC quốc gia",
    "full_online_offered": "Hồ sơ của TTHC toàn trình",
    "full_online_filed": "Trong đó nộp trực tuyến",
    "identity_checked": "Đối chiếu CSDL quốc gia về dân cư",
    "fee_online": "Nộp trực tuyến có phí, lệ phí",
    "paid_online": "Trong đó thanh toán trực tuyến",
    "resolved_early": "Giải quyết trước hạn",
    "resolved_on_time": "Giải quyết đúng hạn",
    "resolved_late": "Giải quyết trễ hạn",
    "in_progress_on_time": "Đang giải quyết trong hạn",
    "in_progress_due_soon": "Trong đó sắp đến hạn",
    "in_progress_overdue": "Đang giải quyết quá hạn",
    "returned_in_time": "Trả kết quả đúng hẹn",
    "returned_late": "Trả kết quả trễ hẹn",
    "apologies_owed": "Thư xin lỗi phải gửi",
    "apologies_sent": "Thư xin lỗi đã gửi",
    "approved": "Được giải quyết",
    "results_digitised": "Kết quả điện tử",
    "rated": "Lượt đánh giá",
    "rated_satisfied": "Hài lòng",
    "rated_dissatisfied": "Không hài lòng",
    "held": "Hồ sơ cơ quan đã xử lý (phần việc)",
    "held_late": "Trong đó bước của cơ quan quá hạn",
}
LEVEL_VI = {"province": "Cấp tỉnh", "district": "Cấp huyện", "commune": "Cấp xã", "unknown": "Khác"}
HEAD = (
    ["Mã cơ quan", "Tên cơ quan", "Cấp"]
    + [HEADERS_VI[f] for f in FIELDS]
    + [
        "Tỷ lệ đúng hạn (%)",
        "Tỷ lệ đúng hạn phần việc của cơ quan (%)",
        "Điểm Bộ chỉ số 766",
    ]
)


def _row(code: str, name: str, level: str, c: dict, catalogue: dict) -> list[Any]:
    good, handled = on_time(c)
    score = round(sum(g["score"] for g in scorecard_766(c, catalogue)), 1)
    return (
        [code, name, LEVEL_VI.get(level, level)]
        + [c[f] for f in FIELDS]
        + [
            share(good, handled),
            share(c["held"] - c["held_late"], c["held"]),
            score,
        ]
    )


def table(report: dict) -> list[list[Any]]:
    """The header, one row per agency, each level, and the total."""
    catalogue = report["catalogue"]
    rows = [HEAD]
    rows += [_row(a["agency_code"], a["agency_name"], a["level"], a, catalogue) for a in report["agencies"]]
    rows += [_row("", LEVEL_VI.get(lv["level"], lv["level"]), lv["level"], lv, catalogue) for lv in report["levels"]]
    rows.append(_row("", "Tổng cộng", "", report["total"], catalogue))
    return rows


def to_csv(report: dict) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    for row in table(report):
        writer.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _local(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(LOCAL_TZ).strftime("%d/%m/%Y %H:%M")


def to_xlsx(report: dict, agency_names: dict | None = None) -> bytes:
    agency_names = agency_names or {}
    book = Workbook()
    sheet = book.active
    sheet.title = "Theo cơ quan"
    sheet.append(
        [f"Báo cáo từ {_local(report['from'])} đến {_local(report['to'])} (số liệu đến {_local(report['judged_at'])})"]
    )
    for row in table(report):
        sheet.append(row)
    for cell in sheet[2]:
        cell.font = Font(bold=True)

    card = book.create_sheet("Bộ chỉ số 766")
    card.append(["Nhóm", "Chỉ số", "Điểm tối đa", "Tỷ lệ (%)", "Điểm", "Chưa đo vì"])
    for group in scorecard_766(report["total"], report["catalogue"]):
        for part in group["indicators"]:
            card.append(
                [
                    f"{group['group']}. {group['name']}",
                    part["name"],
                    part["max"],
                    part["rate"],
                    part["score"],
                    part["why"],
                ]
            )
        card.append([f"{group['group']}. {group['name']}", "Cộng nhóm", group["max"], None, group["score"], None])
    for cell in card[1]:
        cell.font = Font(bold=True)

    late = book.create_sheet("Hồ sơ trễ hạn")
    late.append(
        [
            "Mã hồ sơ",
            "Thủ tục",
            "Nơi tiếp nhận",
            "Cơ quan thực hiện",
            "Tình trạng",
            "Hạn theo luật",
            "Trễ (phút)",
            "Bước quá hạn",
        ]
    )
    names = {code: agency.name for code, agency in agency_names.items()}
    for d in report["late"]:
        charged = "; ".join(charged_vi(d["charged_to"], names, lambda m: f"{m} phút"))
        state = STATE_VI[d["state"]]
        late.append(
            [
                d["code"],
                d["procedure_name"],
                d["agency_code"],
                d["handling_agency"],
                state,
                _local(d["legal_due_at"]),
                d["late_minutes"],
                charged,
            ]
        )
    for cell in late[1]:
        cell.font = Font(bold=True)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
