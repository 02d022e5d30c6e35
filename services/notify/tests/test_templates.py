"""Messages fit their channel: long free text is shortened at a word with "…", never in the
middle of a character, and the dossier code and what to do next always arrive."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime, timezone

from services.notify.templates import SMS_MAX_UNITS, ZALO_MAX_UNITS, compose, shorten, utf16_units
from shared.events import Actor, DossierResolved, DossierSupplementRequested

CODE = "000.21.12.H40-261124-0007"


def supplement(reasons: list[str]) -> DossierSupplementRequested:
    return DossierSupplementRequested(
        dossier_id=uuid.uuid4(),
        dossier_code=CODE,
        at=datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc),
        agency_code="000.21.12.H40",
        step_index=0,
        reasons=tuple(reasons),
        remaining_minutes=600,
        actor=Actor(name="Phạm Minh Tuấn"),
    )


def test_a_short_message_is_left_whole():
    m = compose(supplement(["Thiếu bản sao Giấy khai sinh"]), "Bùi Thị Mơ", CODE)
    assert (
        m.sms
        == f"DVC: Hồ sơ {CODE} cần bổ sung: Thiếu bản sao Giấy khai sinh. Thời hạn giải quyết tạm dừng đến khi nhận đủ."
    )
    assert "…" not in m.zalo and m.zalo.startswith("Kính gửi ông/bà Bùi Thị Mơ.")


def test_long_reasons_are_shortened_to_the_channel_keeping_the_code_and_the_tail():
    reasons = ["Bổ sung bản sao có chứng thực Giấy chứng nhận quyền sử dụng đất và hợp đồng ủy quyền " * 5] * 20
    m = compose(supplement(reasons), "Bùi Thị Mơ", CODE)
    assert utf16_units(m.sms) <= SMS_MAX_UNITS and utf16_units(m.zalo) <= ZALO_MAX_UNITS
    for text in (m.sms, m.zalo):
        assert CODE in text and text.endswith("Thời hạn giải quyết tạm dừng đến khi nhận đủ.")
        assert "…" in text
        assert unicodedata.normalize("NFC", text) == text
    # the e-mail has no channel limit: every reason arrives
    assert m.email.count("hợp đồng ủy quyền") == 100


def test_shortening_never_splits_a_character():
    decomposed = unicodedata.normalize("NFD", "Nguyễn Thị Hồng Nhung " * 10)  # letters and marks apart
    for limit in range(5, 60):
        out = shorten(decomposed, limit)
        assert utf16_units(out) <= limit and out.endswith("…")
        assert not unicodedata.combining(out[0])
        assert unicodedata.normalize("NFC", out) == out  # marks stayed with their letters
        assert unicodedata.normalize("NFC", decomposed).startswith(out[:-1])
    emoji = "Hồ sơ 😀😀😀😀😀 đã xong"
    for limit in range(3, utf16_units(emoji)):
        out = shorten(emoji, limit)
        assert utf16_units(out) <= limit
        out.encode("utf-8")  # raises on a lone surrogate half


def test_the_results_message_links_to_the_rating_page_and_still_fits():
    resolved = DossierResolved(
        dossier_id=uuid.uuid4(),
        dossier_code=CODE,
        at=datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc),
        outcome="refused",
        agency_code="000.21.12.H40",
        reasons=("Không đủ điều kiện theo quy định " * 30,),
        due_at=datetime(2026, 11, 25, 10, 0, tzinfo=timezone.utc),
        on_time=True,
        actor=Actor(name="Phạm Minh Tuấn"),
    )
    link = "https://dichvucong.example.vn/danh-gia"
    m = compose(resolved, "Bùi Thị Mơ", CODE, rating_url=link)
    for text in (m.sms, m.zalo):
        assert text.endswith(f"Mời đánh giá: {link}?ma={CODE}")  # the free text gave way, not the link
    assert utf16_units(m.sms) <= SMS_MAX_UNITS
    assert "Mời đánh giá" not in compose(resolved, "Bùi Thị Mơ", CODE).sms  # no page set: no link
    assert "Mời đánh giá" not in compose(supplement(["Thiếu giấy"]), "Bùi Thị Mơ", CODE, rating_url=link).sms


def test_staff_are_asked_to_look_at_a_failed_identity_check_only():
    from services.notify.handlers import staff_message
    from shared.events import DossierIdentityChecked

    def checked(outcome: str, mismatched: tuple[str, ...]) -> DossierIdentityChecked:
        return DossierIdentityChecked(
            dossier_id=uuid.uuid4(),
            dossier_code=CODE,
            at=datetime(2026, 11, 24, 3, 0, tzinfo=timezone.utc),
            agency_code="000.21.12.H40",
            outcome=outcome,
            mismatched=mismatched,
        )

    names = {"000.21.12.H40": "Ủy ban nhân dân xã Ninh Hải"}
    assert staff_message(checked("confirmed", ()), names.__getitem__) is None
    agency, _, number, message = staff_message(checked("failed", ("date_of_birth", "full_name")), names.__getitem__)
    assert (agency, number) == ("000.21.12.H40", CODE)
    assert CODE in message.subject and "Ủy ban nhân dân xã Ninh Hải" in message.email
    assert "ngày sinh, họ tên" in message.email  # the fields by their Vietnamese names
    assert utf16_units(message.sms) <= SMS_MAX_UNITS and CODE in message.sms
