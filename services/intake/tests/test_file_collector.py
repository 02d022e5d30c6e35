"""The collector of unreferenced files (services/intake/files.py) against the stack's S3 server
and a fresh intake schema: it removes only files no dossier names and nobody uploaded lately,
it waits for a submission binding a file at that moment, and a finished dossier's files go
only after their retention. Time is fixed: the platform's ``now`` is passed in, and the
store's clock is read off the store itself (a file's own time there), moved by ``store_now``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.intake import files, handlers
from services.intake.app import MIGRATIONS
from services.intake.schemas import SubmitDossier
from shared.events import DocumentRef
from shared.files import chunks_of
from shared.outbox import Outbox
from shared.reference import load_reference
from tests.helpers import submission
from tests.unit.test_file_store import PDF, png

VN = ZoneInfo("Asia/Ho_Chi_Minh")
REF = load_reference("three_level")
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=VN)
GRACE = timedelta(hours=24)


async def two_days_after(store, blob):
    """The store's clock two days after ``blob`` was written there: past the grace for every
    file written before it."""
    written = (await store.stat(blob.sha256)).modified
    return lambda: written + timedelta(days=2)


@pytest.fixture
async def intake(service_db):
    settings, pool = await service_db("intake", MIGRATIONS)
    store = settings.file_store("dossiers")
    yield pool, Outbox(settings), settings, store
    async for info in store.listing():
        await store.delete(info.sha256)
    await store.close()


async def upload(intake, data: bytes, by: str, at: datetime):
    pool, _, _, store = intake
    return await files.store_upload(pool, store, chunks_of(data), len(data), by, at)


async def submit_with(intake, sha256: str, at: datetime, by: str = "portal-a"):
    pool, outbox, settings, _ = intake
    body = submission("1.001193")
    body["documents"] = [
        {"component": "TP1", "name": "Tờ khai đăng ký khai sinh", "sha256": sha256},
        {"component": "TP2", "name": "Giấy chứng sinh", "sha256": sha256},
    ]
    cmd = SubmitDossier.model_validate(body)
    outcome, _ = await handlers.submit_dossier(
        cmd, pool=pool, outbox=outbox, ref=REF, settings=settings, idempotency_key=None, now=at, submitted_by=by
    )
    assert hasattr(outcome, "code"), outcome
    return outcome


async def test_a_file_a_dossier_names_is_never_removed_and_an_old_unnamed_one_is(intake):
    pool, _, _, store = intake
    named = await upload(intake, PDF, "portal-a", NOW - timedelta(days=2))
    unnamed = await upload(intake, png(), "portal-a", NOW - timedelta(days=2))
    await submit_with(intake, named.sha256, NOW - timedelta(days=2))
    done = await files.collect(pool, store, NOW, GRACE, store_now=await two_days_after(store, unnamed))
    assert (done.removed, done.kept) == (1, 1)
    assert await store.stat(named.sha256) is not None
    assert await store.stat(unnamed.sha256) is None
    # and within the grace (by both clocks) nothing is a candidate at all
    fresh = await upload(intake, png() + b"\x00", "portal-a", NOW)
    written = (await store.stat(fresh.sha256)).modified
    again = await files.collect(pool, store, NOW, GRACE, store_now=lambda: written)
    assert again.removed == 0 and await store.stat(fresh.sha256) is not None


async def test_the_collector_waits_for_a_submission_binding_the_file_at_that_moment(intake):
    pool, _, settings, store = intake
    blob = await upload(intake, PDF, "portal-a", NOW - timedelta(days=2))
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        # a submission in flight: it has checked the file (and holds the file's shared lock)
        _, reasons = await files.resolve(
            conn,
            [DocumentRef(component="TP1", name="Tờ khai.pdf", sha256=blob.sha256)],
            "online",
            "portal-a",
            None,
            10**9,
        )
        assert reasons == []
        later = await two_days_after(store, blob)
        collecting = asyncio.create_task(files.collect(pool, store, NOW, GRACE, store_now=later))
        await asyncio.sleep(1.0)
        assert not collecting.done(), "the collector decided while a submission held the file"
        # the submission names it (here: another portal's fresh upload of the same bytes) and commits
        await conn.execute(
            "INSERT INTO uploads (sha256, uploaded_by, size, media_type, uploaded_at) VALUES ($1, 'portal-b', $2, $3, $4)",
            blob.sha256,
            blob.size,
            blob.media_type,
            NOW,
        )
        await tx.commit()
    done = await collecting
    assert done.removed == 0
    assert await store.read_all(blob.sha256) == PDF


async def test_a_finished_dossiers_files_go_after_their_retention_and_an_open_ones_never(intake):
    pool, _, settings, store = intake
    old = NOW - timedelta(days=40)
    finished_file = await upload(intake, PDF, "portal-a", old)
    open_file = await upload(intake, png(), "portal-a", old)
    finished = await submit_with(intake, finished_file.sha256, old)
    still_open = await submit_with(intake, open_file.sha256, old)
    # returned long enough ago that its retention ended yesterday
    finished_at = NOW - timedelta(days=1) - timedelta(days=settings.files_retention_days)
    await pool.execute(
        "UPDATE dossiers SET status = 'returned', files_kept_until = $2 WHERE id = $1",
        finished.id,
        files.keep_until(finished_at, settings.files_retention_days),
    )
    await pool.execute("UPDATE dossiers SET status = 'processing' WHERE id = $1", still_open.id)
    done = await files.collect(pool, store, NOW, GRACE, store_now=await two_days_after(store, open_file))
    assert done.unbound == 1  # the finished dossier's file (both its components name it: bound once)
    assert await store.stat(finished_file.sha256) is None
    assert await store.stat(open_file.sha256) is not None
    assert await pool.fetchval("SELECT count(*) FROM dossier_files WHERE dossier_id = $1", still_open.id) == 1
