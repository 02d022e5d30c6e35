"""What citizens are told, in Vietnamese, per channel. Pure: events in, text out.

Each channel has its length rule, and a message is made to fit it rather than cut by the
provider: the free-text part (the reasons an official typed) is shortened at a word boundary
with "…", never in the middle of a character, so the dossier code, dates and what to do next
always arrive. Text is NFC-normalised first, so each Vietnamese letter with its marks is one
character and no mark is split from its letter.

- SMS: Vietnamese needs UCS-2 encoding: 70 UTF-16 units in a single SMS, 67 in each part of
  a concatenated one; we allow ``SMS_MAX_PARTS`` parts.
- Zalo: an official account's text message holds at most 2,000 characters.
- E-mail: no channel limit; the inputs themselves are bounded.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from shared.dossier_text import identity_fields_vi, local_text
from shared.events import (
    DossierApologised,
    DossierReceived,
    DossierRefused,
    DossierResolved,
    DossierSupplementRequested,
    EventData,
    ShipmentBooked,
    ShipmentProgressed,
)

SMS_PART_UNITS = 67
SMS_MAX_PARTS = 4
SMS_MAX_UNITS = SMS_PART_UNITS * SMS_MAX_PARTS
ZALO_MAX_UNITS = 2000
ELLIPSIS = "…"


@dataclass(frozen=True)
class Message:
    subject: str
    sms: str
    zalo: str
    email: str


def utf16_units(text: str) -> int:
    """Length as SMS (UCS-2/UTF-16) and Zalo count it: a character outside the BMP is two."""
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` UTF-16 units, else its longest start that ends on a
    word boundary (or a character boundary for a long word) followed by "…"."""
    text = unicodedata.normalize("NFC", text)
    if utf16_units(text) <= limit:
        return text
    room = limit - utf16_units(ELLIPSIS)
    if room <= 0:
        return ELLIPSIS[: max(limit, 0)]
    cut, used = 0, 0
    for i, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > room:
            break
        used += width
        cut = i + 1
    while 0 < cut < len(text) and unicodedata.combining(text[cut]):
        cut -= 1  # never leave a mark without its letter (text not fully composed by NFC)
    head = text[:cut]
    space = head.rfind(" ")
    if space >= len(head) * 2 // 3:  # prefer a word boundary when one is near
        head = head[:space]
    return head.rstrip(" ;,.:") + ELLIPSIS


def fit(head: str, detail: str, tail: str, limit: int | None) -> str:
    """``head + detail + tail`` within ``limit`` UTF-16 units, shortening ``detail`` first."""
    whole = unicodedata.normalize("NFC", head + detail + tail)
    if limit is None or utf16_units(whole) <= limit:
        return whole
    fixed = utf16_units(unicodedata.normalize("NFC", head + tail))
    if detail and limit - fixed >= 8:
        return unicodedata.normalize("NFC", head + shorten(detail, limit - fixed) + tail)
    return shorten(whole, limit)


def _parts(event: EventData, code: str | None) -> tuple[str, str, str, str] | None:
    """(title, head, detail, tail): ``detail`` is the free text that may be shortened."""
    match event:
        case DossierReceived():
            return (
                "Đã tiếp nhận hồ sơ",
                f"Hồ sơ {event.dossier_code} (",
                event.procedure_name,
                f") đã được tiếp nhận. Hẹn trả kết quả: {local_text(event.due_at)}.",
            )
        case DossierRefused():
            return (
                "Hồ sơ chưa được tiếp nhận",
                "Hồ sơ chưa được tiếp nhận. Lý do: ",
                "; ".join(r.message for r in event.reasons),
                ".",
            )
        case DossierSupplementRequested():
            return (
                "Yêu cầu bổ sung hồ sơ",
                f"Hồ sơ {event.dossier_code} cần bổ sung: ",
                "; ".join(event.reasons),
                ". Thời hạn giải quyết tạm dừng đến khi nhận đủ.",
            )
        case DossierResolved(outcome="approved") if event.result_document and event.result_document.number:
            return (
                "Hồ sơ đã có kết quả",
                f"Hồ sơ {event.dossier_code} đã có kết quả: văn bản số {event.result_document.number}.",
                "",
                "",
            )
        case DossierResolved(outcome="approved"):
            return "Hồ sơ đã có kết quả", f"Hồ sơ {event.dossier_code} đã có kết quả.", "", ""
        case DossierResolved():
            return (
                "Hồ sơ không được giải quyết",
                f"Hồ sơ {event.dossier_code} không được giải quyết. Lý do: ",
                "; ".join(event.reasons),
                ".",
            )
        case DossierApologised():
            return (
                "Thư xin lỗi và hẹn lại ngày trả kết quả",
                "",
                event.agency_name,
                f" xin lỗi vì hồ sơ {event.dossier_code} chưa có kết quả đúng hẹn. "
                f"Ngày hẹn trả mới: {local_text(event.new_due_at)}.",
            )
        case ShipmentBooked(kind="delivery"):
            return (
                "Kết quả đang được chuyển phát",
                f"Kết quả hồ sơ {code or ''} đang được Bưu điện chuyển đến địa chỉ của ông/bà.".replace("  ", " "),
                "",
                "",
            )
        case ShipmentProgressed(kind="pickup", status="picked_up"):
            return (
                "Bưu điện đã nhận hồ sơ",
                "Bưu điện đã nhận hồ sơ của ông/bà để chuyển đến cơ quan giải quyết.",
                "",
                "",
            )
        case ShipmentProgressed(kind="delivery", status="delivered"):
            return (
                "Đã giao kết quả",
                f"Bưu điện đã giao kết quả hồ sơ {code or ''} cho ông/bà.".replace("  ", " "),
                "",
                "",
            )
        case ShipmentProgressed(kind="delivery", status="failed"):
            return (
                "Chưa giao được kết quả",
                f"Bưu điện chưa giao được kết quả hồ sơ {code or ''}; "
                "ông/bà vui lòng nhận tại Bộ phận Một cửa.".replace("  ", " "),
                "",
                "",
            )
    return None


def compose(event: EventData, name: str, code: str | None, *, rating_url: str = "") -> Message | None:
    """The message an event calls for, or None when the citizen need not hear of it. The result's
    message asks the citizen to rate the handling (Decision 766, group 5) when a page is set."""
    parts = _parts(event, code)
    if parts is None:
        return None
    title, head, detail, tail = parts
    if isinstance(event, DossierResolved) and rating_url:
        tail += f" Mời đánh giá: {rating_url}?ma={event.dossier_code}"
    return Message(
        subject=f"[Dịch vụ công] {title}",
        sms=fit(f"DVC: {head}", detail, tail, SMS_MAX_UNITS),
        zalo=fit(f"Kính gửi ông/bà {name}. {head}", detail, tail, ZALO_MAX_UNITS),
        email=fit(f"Kính gửi ông/bà {name},\n\n{head}", detail, f"{tail}\n\nTrân trọng,\nBộ phận Một cửa", None),
    )


URGENCY_VI = {"normal": "thường", "urgent": "khẩn", "very_urgent": "thượng khẩn", "express": "hỏa tốc"}


def _to_staff(subject: str, text: str) -> Message:
    """A message to an agency's officials and manager, on every channel."""
    return Message(
        subject=subject,
        sms=fit("LGSP: ", text, "", SMS_MAX_UNITS),
        zalo=text,
        email=f"Kính gửi đồng chí,\n\n{text}\n\nTrân trọng,\nNền tảng LGSP",
    )


def late_document(number: str, urgency: str, agency_name: str, view_due_at) -> Message:
    """To an agency's officials and manager: a document nobody there opened in time."""
    text = (
        f"Văn bản số {number} (độ khẩn: {URGENCY_VI.get(urgency, urgency)}) gửi đến {agency_name} "
        f"chưa được cán bộ nào mở xem trước hạn {local_text(view_due_at)}. Đề nghị xem và xử lý ngay."
    )
    return _to_staff(f"[LGSP] Văn bản {number} chưa được xem đúng hạn", text)


def identity_unconfirmed(code: str, agency_name: str, mismatched) -> Message:
    """To the receiving agency's officials and manager: an applicant received "to be confirmed"
    while the population database did not answer does not match it. Names the fields, never
    their values (the official opens the dossier to see them)."""
    text = (
        f"Hồ sơ {code} tiếp nhận tại {agency_name} khi CSDL quốc gia về dân cư chưa trả lời; nay đối chiếu "
        f"không khớp ({identity_fields_vi(mismatched)}). Đề nghị cán bộ kiểm tra lại thông tin người nộp."
    )
    return _to_staff(f"[LGSP] Hồ sơ {code}: thông tin công dân không khớp CSDL dân cư", text)
