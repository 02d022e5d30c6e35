"""Human-readable lines for dossier events and for the official documents sent about a
dossier (Vietnamese, no personal data), shared by the history intake shows, the timeline
routing keeps and the documents service's lists."""

from __future__ import annotations

from datetime import datetime

from shared.events import (
    DocumentSent,
    DocumentStatusChanged,
    DossierApologised,
    DossierAssigned,
    DossierAtRisk,
    DossierEvent,
    DossierFileOpened,
    DossierIdentityChecked,
    DossierOverdue,
    DossierReceived,
    DossierResolved,
    DossierResumed,
    DossierReturned,
    DossierStepAccepted,
    DossierStepOverdue,
    DossierStopped,
    DossierSupplemented,
    DossierSupplementRequested,
    DossierTransferred,
    DossierWithdrawn,
)
from shared.reference.calendar import LOCAL_TZ


def local_text(moment: datetime) -> str:
    """How a slip prints a moment: ``17:00 ngày 05/08/2021``."""
    return moment.astimezone(LOCAL_TZ).strftime("%H:%M ngày %d/%m/%Y")


# The applicant's fields the national population database checks, as officials name them.
IDENTITY_FIELD_VI = {"id_number": "số định danh cá nhân", "full_name": "họ tên", "date_of_birth": "ngày sinh"}


def identity_fields_vi(fields) -> str:
    return ", ".join(IDENTITY_FIELD_VI.get(f, f) for f in fields)


def summarise(event: DossierEvent) -> str:
    """One line of the dossier's history, in Vietnamese, without personal data."""
    match event:
        case DossierReceived():
            return f"Tiếp nhận hồ sơ, hẹn trả {local_text(event.due_at)}"
        case DossierAssigned():
            return f"Chuyển bước '{event.step_name}', hạn bước {local_text(event.step_due_at)}"
        case DossierTransferred():
            return f"Liên thông từ {event.from_agency} ({event.from_level}) đến {event.to_agency} ({event.to_level})"
        case DossierStepAccepted():
            return f"{event.actor.name} nhận xử lý"
        case DossierSupplementRequested():
            return "Yêu cầu bổ sung: " + "; ".join(event.reasons)
        case DossierSupplemented():
            return f"Công dân bổ sung {len(event.documents)} giấy tờ"
        case DossierResumed():
            return f"Tiếp tục xử lý, hẹn trả mới {local_text(event.due_at)}"
        case DossierResolved():
            verdict = "Phê duyệt" if event.outcome == "approved" else "Từ chối: " + "; ".join(event.reasons)
            if event.result_document is not None and event.result_document.number:
                verdict += f", văn bản số {event.result_document.number}"
            return f"{verdict} ({'đúng hạn' if event.on_time else 'trễ hạn'})"
        case DossierReturned():
            return f"Trả kết quả ({event.method})"
        case DossierIdentityChecked(outcome="confirmed"):
            return "Đã xác thực thông tin công dân với CSDL quốc gia về dân cư"
        case DossierIdentityChecked():
            return (
                "Thông tin công dân không khớp CSDL quốc gia về dân cư ("
                + identity_fields_vi(event.mismatched)
                + "): cán bộ cần kiểm tra"
            )
        case DossierWithdrawn():
            return "Công dân rút hồ sơ: " + "; ".join(event.reasons)
        case DossierStopped():
            return "Dừng xử lý: " + "; ".join(event.reasons)
        case DossierAtRisk():
            return f"Sắp đến hạn {local_text(event.due_at)}"
        case DossierStepOverdue():
            return f"Bước {event.step_index + 1} quá hạn tại {event.agency_code}"
        case DossierOverdue():
            return f"Hồ sơ quá hạn (hẹn {local_text(event.due_at)})"
        case DossierApologised():
            return f"{event.agency_name} xin lỗi, hẹn lại {local_text(event.new_due_at)}"
        case DossierFileOpened():
            where = f" ({event.agency_code})" if event.agency_code else ""
            return f"{event.actor.name}{where} mở tệp {event.name}"
    return event.ce_type


# The edXML statuses of a document's delivery, as Vietnamese document software names them.
DOCUMENT_STATUS_VI = {
    "arrived": "Đã đến",
    "refused": "Từ chối tiếp nhận",
    "accepted": "Đã tiếp nhận",
    "assigned": "Phân công",
    "in_processing": "Đang xử lý",
    "done": "Hoàn thành",
    "recalled": "Thu hồi",
    "updated": "Cập nhật",
    "sending": "Đang gửi",
}


def summarise_document(event: DocumentSent | DocumentStatusChanged, number: str) -> str:
    """One line of a dossier's timeline about a document sent for it (``number``: số, ký hiệu)."""
    match event:
        case DocumentSent(version=1):
            return f"{event.sender_agency} gửi {event.doc_type} số {number} đến {', '.join(event.recipients)}"
        case DocumentSent():
            return f"{event.sender_agency} gửi bản cập nhật lần {event.version - 1} của văn bản số {number}"
        case DocumentStatusChanged():
            line = f"Văn bản số {number} tại {event.recipient_agency}: {DOCUMENT_STATUS_VI.get(event.status, event.status)}"
            return line + (f" ({event.reason})" if event.reason else "")
    return event.ce_type
