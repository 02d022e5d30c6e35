"""The file store's S3 back end against the local stack's real S3 server (S3Proxy): the same
rules as the local back end (tests/unit/test_file_store.py), plus what only a server can
break: its signature check, and its Content-MD5 check of what arrives."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from botocore.exceptions import ClientError

from ops.stack import S3_ACCESS_KEY, S3_BUCKET
from shared.files import BlobCorrupt, S3Store, UnsupportedType, chunks_of, open_store
from tests.unit.test_file_store import PDF, png


@pytest.fixture
async def s3(local_stack, monkeypatch):
    for name, value in local_stack.files_env().items():
        monkeypatch.setenv(name, value)
    store = open_store(local_stack.files_env()["LGSP_FILES_URL"], f"test-{uuid.uuid4().hex[:8]}")
    assert isinstance(store, S3Store)
    yield store
    async for info in store.listing():
        await store.delete(info.sha256)
    await store.close()


async def test_files_go_through_the_real_s3_api_whole_and_under_their_hash(s3):
    pdf = await s3.put(chunks_of(PDF), limit=len(PDF))
    image = await s3.put_bytes(png())
    assert pdf.sha256 == hashlib.sha256(PDF).hexdigest() and image.media_type == "image/png"
    assert await s3.read_all(pdf.sha256) == PDF
    assert sorted(i.sha256 for i in [x async for x in s3.listing()]) == sorted([pdf.sha256, image.sha256])
    assert (await s3.stat(pdf.sha256)).size == len(PDF)
    await s3.delete(image.sha256)
    assert await s3.stat(image.sha256) is None
    with pytest.raises(UnsupportedType):
        await s3.put_bytes(b"<html>not a scan</html>")


async def test_the_server_refuses_bytes_that_do_not_match_their_checksum_and_a_wrong_key(s3, local_stack):
    client = await s3.client()
    with pytest.raises(ClientError, match="BadDigest|InvalidDigest"):
        await client.put_object(
            Bucket=S3_BUCKET,
            Key=s3.key("0" * 64),
            Body=PDF,
            ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==",  # md5 of nothing
        )
    stranger = S3Store(S3_BUCKET, s3.prefix, local_stack.s3_endpoint, S3_ACCESS_KEY, "not-the-secret")
    try:
        with pytest.raises(ClientError, match="SignatureDoesNotMatch|AccessDenied|InvalidAccessKeyId"):
            await stranger.put_bytes(PDF)
    finally:
        await stranger.close()
    assert [x async for x in s3.listing()] == []


async def test_an_object_changed_behind_the_store_is_never_served_whole(s3, local_stack):
    blob = await s3.put_bytes(PDF)
    on_disk = local_stack.s3_dir / "data" / S3_BUCKET / s3.key(blob.sha256)
    assert on_disk.read_bytes() == PDF  # S3Proxy's filesystem back end keeps the object as a file
    on_disk.write_bytes(PDF.replace(b"PDF-1.7", b"PDF-1.6"))
    with pytest.raises(BlobCorrupt):
        await s3.read_all(blob.sha256)
