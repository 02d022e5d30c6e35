"""What citizens are told, in Vietnamese, per channel. Pure: events in, text out."""

from __future__ import annotations

from dataclasses import dataclass

from shared.dossier_text import local_text
from shared.events import (
    DossierApologised, DossierReceived, DossierRefused, DossierResolved, DossierSupplementRequested, EventData,
    ShipmentBooked, ShipmentProgressed,
)


@dataclass(frozen=True)
class Message:
    subject: str
    sms: str
    zalo: str
    email: str


def compose(event: EventData, name: str, code: str | None) -> Message | None:
    """The message an event calls for, or None when the citizen need not hear of it."""
    match event:
        case DossierReceived():
            title = "Đã tiếp nhận hồ sơ"
            text = (f"Hồ sơ {event.dossier_code} ({event.procedure_name}) đã được tiếp nhận. "
                    f"Hẹn trả kết quả: {local_text(event.due_at)}.")
        case DossierRefused():
            title = "Hồ sơ chưa được tiếp nhận"
            text = "Hồ sơ chưa được tiếp nhận. Lý do: " + "; ".join(r.message for r in event.reasons) + "."
        case DossierSupplementRequested():
            title = "Yêu cầu bổ sung hồ sơ"
            text = f"Hồ sơ {event.dossier_code} cần bổ sung: " + "; ".join(event.reasons) + ". Thời hạn giải quyết tạm dừng đến khi nhận đủ."
        case DossierResolved(outcome="approved"):
            title = "Hồ sơ đã có kết quả"
            text = f"Hồ sơ {event.dossier_code} đã có kết quả."
        case DossierResolved():
            title = "Hồ sơ không được giải quyết"
            text = f"Hồ sơ {event.dossier_code} không được giải quyết. Lý do: " + "; ".join(event.reasons) + "."
        case DossierApologised():
            title = "Thư xin lỗi và hẹn lại ngày trả kết quả"
            text = (f"{event.agency_name} xin lỗi vì hồ sơ {event.dossier_code} chưa có kết quả đúng hẹn. "
                    f"Ngày hẹn trả mới: {local_text(event.new_due_at)}.")
        case ShipmentBooked(kind="delivery"):
            title = "Kết quả đang được chuyển phát"
            text = f"Kết quả hồ sơ {code or ''} đang được Bưu điện chuyển đến địa chỉ của ông/bà.".replace("  ", " ")
        case ShipmentProgressed(kind="pickup", status="picked_up"):
            title = "Bưu điện đã nhận hồ sơ"
            text = "Bưu điện đã nhận hồ sơ của ông/bà để chuyển đến cơ quan giải quyết."
        case ShipmentProgressed(kind="delivery", status="delivered"):
            title = "Đã giao kết quả"
            text = f"Bưu điện đã giao kết quả hồ sơ {code or ''} cho ông/bà.".replace("  ", " ")
        case ShipmentProgressed(kind="delivery", status="failed"):
            title = "Chưa giao được kết quả"
            text = f"Bưu điện chưa giao được kết quả hồ sơ {code or ''}; ông/bà vui lòng nhận tại Bộ phận Một cửa.".replace("  ", " ")
        case _:
            return None
    return Message(
        subject=f"[Dịch vụ công] {title}",
        sms=f"DVC: {text}",
        zalo=f"Kính gửi ông/bà {name}. {text}",
        email=f"Kính gửi ông/bà {name},\n\n{text}\n\nTrân trọng,\nBộ phận Một cửa",
    )
