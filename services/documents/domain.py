"""The rules of a document's delivery, with no I/O: the statuses in the vocabulary of the
national document-exchange axis (edXML status messages, Decision 28/2018/QĐ-TTg), and which
move may follow which.

The two-digit codes are those of the edXML status message as we know them (01 arrived,
02 refused, 03 accepted, 04 assigned, 05 in processing, 06 done); the codes for the sender's
recall and update (13, 15) could not be checked against the published standard from here.
"""

from __future__ import annotations

import re

from shared.dossier_text import DOCUMENT_STATUS_VI

# An agency code of the national catalogue: 000.00.00.G01 ... ; ours end in the province's own suffix.
AGENCY_CODE = re.compile(r"^\d{3}\.\d{2}\.\d{2}\.[A-Z]\d{2}$")
AXIS_STATUSES = ("arrived", "refused", "accepted", "assigned", "in_processing", "done")  # what the axis may report


def split_recipients(codes, agencies) -> tuple[set[str], set[str]]:
    """Of ``codes``, those of other provinces' agencies (reached through the national axis) and
    those that are no agency at all; the rest are ``agencies`` of this province."""
    suffix = next(iter(agencies)).rsplit(".", 1)[1]  # the province's own, e.g. H40
    outside = {c for c in codes if c not in agencies and AGENCY_CODE.match(c) and not c.endswith("." + suffix)}
    unknown = {c for c in codes if c not in agencies and c not in outside}
    return outside, unknown


CODES = {
    "arrived": "01",  # Đã đến
    "refused": "02",  # Từ chối tiếp nhận
    "accepted": "03",  # Đã tiếp nhận
    "assigned": "04",  # Phân công
    "in_processing": "05",  # Đang xử lý
    "done": "06",  # Hoàn thành
    "recalled": "13",  # Lấy lại (the sender's)
    "updated": "15",  # Cập nhật (the sender's)
}
LABELS_VI = DOCUMENT_STATUS_VI  # shared with the dossier timeline

# What a receiving agency may do next, from where its copy stands.
RECEIVER_MOVES = {
    "arrived": ("accepted", "refused"),
    "accepted": ("assigned", "in_processing"),
    "assigned": ("in_processing",),
    "in_processing": ("done",),
}
FINAL = ("refused", "done", "recalled")
# Classified documents (mật, tối mật, tuyệt mật) never travel electronically on this platform.
CLASSIFICATIONS = ("none", "confidential", "secret", "top_secret")


class MoveRefused(ValueError):
    """The move is not allowed from where the delivery stands; the message says why."""


def receiver_move(current: str, wanted: str) -> str:
    """The new status when a recipient moves its copy from ``current`` to ``wanted``."""
    allowed = RECEIVER_MOVES.get(current, ())
    if wanted not in allowed:
        choices = ", ".join(allowed) or "nothing: the delivery is " + current
        raise MoveRefused(f"a delivery that is {current} can move to {choices}; not {wanted}")
    return wanted


def can_recall(statuses: list[str]) -> bool:
    """The sender may recall while no recipient has finished with the document."""
    return "done" not in statuses


# How long after arrival a receiving agency has, in office minutes (8 hours a working day):
# to open a document, and to finish it. The sources name no figures: these are the project's
# defaults, by urgency (hỏa tốc, thượng khẩn, khẩn, thường).
VIEW_WITHIN = {"express": 60, "very_urgent": 120, "urgent": 240, "normal": 480}
PROCESS_WITHIN = {"express": 240, "very_urgent": 480, "urgent": 3 * 480, "normal": 10 * 480}
VIEWING_RATE_FLOOR = 75.0  # officials viewing less than this share of their incoming documents are named


def viewing_rate(viewed: int, received: int) -> float | None:
    return None if not received else round(100 * viewed / received, 1)
