"""The file store's rules (shared/files.py) on its local back end, and the checks of a
dossier's files at receipt (services/intake/checks.py), in memory and on a temporary folder.
The S3 back end runs the same rules against the stack's real S3 server: tests/test_file_store_s3.py."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib

import pytest

from services.intake.checks import StoredFile, check_files
from shared.events import DocumentRef
from shared.files import (
    BlobCorrupt,
    FileTooLarge,
    LocalStore,
    UnsupportedType,
    chunks_of,
    content_disposition,
    sniff,
)

PDF = b"%PDF-1.7\n" + "Đơn đề nghị cấp giấy phép xây dựng".encode() * 200


def png() -> bytes:
    """A real 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 300 + b"\xff\xd9"


def test_the_type_is_judged_by_the_bytes_not_the_name():
    assert sniff(PDF) == "application/pdf"
    assert sniff(png()) == "image/png"
    assert sniff(JPEG) == "image/jpeg"
    assert sniff(b"MZ\x90\x00 a windows program named scan.pdf") == "application/x-msdownload"
    assert sniff("Đơn.pdf".encode()) is None


async def test_a_file_is_stored_once_under_its_hash_and_read_back_whole(tmp_path):
    store = LocalStore(tmp_path, "dossiers")
    blob = await store.put(chunks_of(PDF), limit=len(PDF))
    assert blob.sha256 == hashlib.sha256(PDF).hexdigest()
    assert (blob.size, blob.media_type) == (len(PDF), "application/pdf")
    again = await store.put(chunks_of(PDF), limit=len(PDF))
    assert again == blob
    assert [i.sha256 for i in [x async for x in store.listing()]] == [blob.sha256]
    assert await store.read_all(blob.sha256) == PDF
    assert (await store.stat(blob.sha256)).size == len(PDF)


async def test_an_upload_over_the_limit_or_of_another_type_leaves_nothing_behind(tmp_path):
    store = LocalStore(tmp_path, "dossiers")
    with pytest.raises(FileTooLarge):
        await store.put(chunks_of(PDF), limit=len(PDF) - 1)
    with pytest.raises(UnsupportedType, match="judged by its bytes"):
        await store.put(chunks_of(b"#!/bin/sh\nrm -rf /\n" * 10), limit=10_000)
    with pytest.raises(UnsupportedType, match="x-msdownload"):
        await store.put(chunks_of(b"MZ\x90\x00 a windows program named scan.pdf"), limit=10_000)
    with pytest.raises(FileTooLarge, match="empty"):
        await store.put(chunks_of(b""), limit=10)
    assert [x async for x in store.listing()] == []
    assert not list(tmp_path.rglob(".part-*"))


async def test_a_stored_file_whose_bytes_changed_is_never_served_whole(tmp_path):
    store = LocalStore(tmp_path, "dossiers")
    blob = await store.put(chunks_of(PDF), limit=len(PDF))
    path = store.path(blob.sha256)
    path.write_bytes(PDF[:-1] + b"X")  # a disk fault, or someone's hand
    received = io.BytesIO()
    with pytest.raises(BlobCorrupt):
        async for chunk in store.read(blob.sha256):
            received.write(chunk)
    assert received.getvalue() != PDF


def test_vietnamese_file_names_survive_the_download_header():
    header = content_disposition("Giấy chứng nhận quyền sử dụng đất.pdf")
    assert "filename*=UTF-8''Gi%E1%BA%A5y%20ch%E1%BB%A9ng" in header
    assert header.isascii()


def ref(**fields) -> DocumentRef:
    return DocumentRef(**{"component": "TP1", "name": "Tờ khai.pdf", **fields})


SHA_A, SHA_B = "a" * 64, "b" * 64


def test_a_component_binds_only_a_file_its_own_system_uploaded_and_takes_its_stored_size_and_type():
    uploaded = {SHA_A: StoredFile(1000, "application/pdf")}
    bound, reasons = check_files([ref(sha256=SHA_A)], "online", uploaded, {}, 10_000)
    assert reasons == []
    assert (bound[0].size, bound[0].media_type) == (1000, "application/pdf")
    _, reasons = check_files([ref(sha256=SHA_B)], "online", uploaded, {}, 10_000)
    assert [r.code for r in reasons] == ["file_not_uploaded"]
    _, reasons = check_files([ref(sha256=SHA_A, size=999)], "online", uploaded, {}, 10_000)
    assert [r.code for r in reasons] == ["file_mismatch"]


def test_online_dossiers_carry_files_and_counter_ones_may_stay_on_paper():
    _, online = check_files([ref()], "online", {}, {}, 10_000)
    assert [r.code for r in online] == ["file_required"]
    bound, counter = check_files([ref()], "counter", {}, {}, 10_000)
    assert counter == [] and not bound[0].digitised


def test_a_dossier_over_its_total_is_refused():
    uploaded = {SHA_A: StoredFile(6000, "application/pdf"), SHA_B: StoredFile(6000, "image/png")}
    _, reasons = check_files([ref(sha256=SHA_A), ref(component="TP2", sha256=SHA_B)], "online", uploaded, {}, 10_000)
    assert [r.code for r in reasons] == ["dossier_too_large"]


def test_a_reused_result_must_be_the_applicants_own():
    result = DocumentRef(name="Giấy phép.pdf", sha256=SHA_A, size=5000, media_type="application/pdf")
    bound, reasons = check_files(
        [ref(reused_from="000.21.12.H40-261130-0001")], "online", {}, {"000.21.12.H40-261130-0001": result}, 10_000
    )
    assert reasons == []
    assert (bound[0].sha256, bound[0].reused_from) == (SHA_A, "000.21.12.H40-261130-0001")
    _, reasons = check_files([ref(reused_from="000.21.12.H40-261130-0002")], "online", {}, {}, 10_000)
    assert [r.code for r in reasons] == ["reuse_not_found"]


def test_the_postal_slip_names_the_result_file_kept_for_the_citizen():
    import uuid
    from datetime import datetime, timezone

    from services.postal.handlers import result_contents
    from shared.events import Actor, DossierResolved

    at = datetime(2026, 11, 30, 3, 0, tzinfo=timezone.utc)
    event = DossierResolved(
        dossier_id=uuid.uuid4(),
        dossier_code="000.21.12.H40-261130-0001",
        at=at,
        outcome="approved",
        agency_code="000.00.12.H40",
        result_document=DocumentRef(name="Giấy chứng nhận.pdf", sha256=SHA_A, number="12/GCN"),
        due_at=at,
        on_time=True,
        actor=Actor(name="Cán bộ"),
    )
    assert result_contents(event) == (
        "Kết quả hồ sơ 000.21.12.H40-261130-0001: văn bản số 12/GCN (bản điện tử SHA-256 aaaaaaaaaaaaaaaa…)"
    )
