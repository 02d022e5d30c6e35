"""The file store: a dossier's files (and the official documents' PDFs), each kept once under
its SHA-256, behind one interface with two back ends.

- ``file:///path``: the local filesystem, the embedded default (nothing else to run);
- ``s3://bucket?endpoint=http://host:port``: any S3 API (a province's MinIO or Ceph, a cloud
  bucket; the local stack runs S3Proxy), through aiobotocore. Its keys come from
  ``LGSP_S3_ACCESS_KEY`` / ``LGSP_S3_SECRET_KEY``.

Events carry claim checks (name, type, size, hash), never bytes. The rules every back end keeps:
- a file is written whole or not at all: it is spooled and hashed first, then moved into place
  (local: rename; S3: one PUT with Content-MD5, which the server checks), so no half-written
  file is ever under its hash;
- its type is judged by its content (magic bytes), never by its name;
- every read is hashed on the way: a file whose bytes no longer match its name ends the stream
  with an error instead of its last chunk, so nobody receives a corrupt file as whole.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Protocol
from urllib.parse import parse_qs, quote, urlparse

import filetype  # magic-byte sniffing: a small, well-kept library rather than our own table
from pydantic import BaseModel, Field
from starlette.responses import StreamingResponse

from shared.errors import DomainError, NotFound

CHUNK = 64 * 1024
SPOOL_IN_MEMORY = 1024 * 1024  # larger uploads spill to a temporary file while they are hashed
# What a dossier's component may be unless the catalogue says otherwise (Decree 45/2020: PDF
# for documents, JPEG/PNG for scans and photos).
ACCEPTED_TYPES = frozenset({"application/pdf", "image/jpeg", "image/png"})
SHA256_PATTERN = r"^[0-9a-f]{64}$"


class FileTooLarge(DomainError):
    status = 413


class UnsupportedType(DomainError):
    status = 415


class BlobMissing(NotFound):
    """No file is stored under that hash (never uploaded, or removed by the collector)."""


class StoreUnavailable(DomainError):
    """The file store does not answer (an S3 server down, a timeout): try again later."""

    status = 503


class BlobCorrupt(RuntimeError):
    """The stored bytes no longer hash to their name: never served as whole."""


@dataclass(frozen=True)
class Blob:
    sha256: str
    size: int
    media_type: str


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int
    modified: datetime


def sniff(head: bytes) -> str | None:
    """The media type the first bytes show, or None when they show nothing we know."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    kind = filetype.guess(head)
    return kind.mime if kind else None


@dataclass
class Spooled:
    """An upload read to its end: hashed, measured, its type sniffed, its bytes in ``file``."""

    blob: Blob
    file: IO[bytes]
    md5: str

    def close(self) -> None:
        self.file.close()


async def spool(chunks: AsyncIterator[bytes], limit: int, accepted: frozenset[str] = ACCEPTED_TYPES) -> Spooled:
    """Read an upload as it arrives: hashed on the way, refused as soon as it passes ``limit``
    bytes, its type judged by its first bytes."""
    sha, md5, size, head = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0, b""
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    try:
        async for chunk in chunks:
            if not chunk:
                continue
            size += len(chunk)
            if size > limit:
                raise FileTooLarge(f"the file is larger than {limit} bytes")
            if len(head) < 262:  # what the sniffer reads
                head += chunk[: 262 - len(head)]
            sha.update(chunk)
            md5.update(chunk)
            out.write(chunk)
        if size == 0:
            raise FileTooLarge("the file is empty")
        media_type = sniff(head)
        if media_type not in accepted:
            shown = media_type or "not a type we know"
            raise UnsupportedType(
                f"the file's content is {shown}; accepted: {', '.join(sorted(accepted))} (judged by its bytes, not its name)"
            )
        out.seek(0)
        return Spooled(Blob(sha.hexdigest(), size, media_type), out, base64.b64encode(md5.digest()).decode())
    except BaseException:
        out.close()
        raise


async def chunks_of(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


class BlobStore(Protocol):
    """One namespace (``prefix``) of content-addressed files."""

    prefix: str

    async def put(self, chunks: AsyncIterator[bytes], limit: int, accepted: frozenset[str] = ACCEPTED_TYPES) -> Blob:
        """Store an upload under its hash; storing the same bytes again refreshes its time."""
        ...

    async def put_bytes(self, data: bytes, accepted: frozenset[str] = ACCEPTED_TYPES) -> Blob: ...

    async def put_spooled(self, spooled: Spooled) -> Blob:
        """Store an upload already read and checked (``spool``)."""
        ...

    async def stat(self, sha256: str) -> BlobInfo | None: ...

    def read(self, sha256: str) -> AsyncIterator[bytes]:
        """The file's bytes, hashed on the way (``BlobMissing``, ``BlobCorrupt``)."""
        ...

    async def read_all(self, sha256: str) -> bytes: ...

    async def delete(self, sha256: str) -> None: ...

    def listing(self) -> AsyncIterator[BlobInfo]: ...

    async def close(self) -> None: ...


class _Common:
    """What every back end does the same way: spool and check, verify on read."""

    prefix: str

    async def put(self, chunks: AsyncIterator[bytes], limit: int, accepted: frozenset[str] = ACCEPTED_TYPES) -> Blob:
        spooled = await spool(chunks, limit, accepted)
        try:
            return await self.put_spooled(spooled)
        finally:
            spooled.close()

    async def put_spooled(self, spooled: Spooled) -> Blob:
        await self._commit(spooled)
        return spooled.blob

    async def put_bytes(self, data: bytes, accepted: frozenset[str] = ACCEPTED_TYPES) -> Blob:
        return await self.put(chunks_of(data), max(len(data), 1), accepted)

    async def _commit(self, spooled: Spooled) -> None:
        raise NotImplementedError

    async def stat(self, sha256: str) -> BlobInfo | None:
        raise NotImplementedError

    def _raw(self, sha256: str) -> AsyncIterator[bytes]:
        raise NotImplementedError

    async def read(self, sha256: str) -> AsyncIterator[bytes]:
        digest = hashlib.sha256()
        async for chunk in self._raw(sha256):
            digest.update(chunk)
            yield chunk
        if digest.hexdigest() != sha256:
            raise BlobCorrupt(f"{self.prefix}/{sha256[:12]}…: the stored bytes do not match their hash")

    async def read_all(self, sha256: str) -> bytes:
        return b"".join([chunk async for chunk in self.read(sha256)])


class LocalStore(_Common):
    """Files under ``root/prefix/ab/<sha256>``: fsync'd in a temporary file, then renamed."""

    def __init__(self, root: Path, prefix: str) -> None:
        self.root, self.prefix = root, prefix
        self.base = root / prefix
        self.base.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise BlobMissing(f"no file {sha256[:70]!r}")
        return self.base / sha256[:2] / sha256

    async def _commit(self, spooled: Spooled) -> None:
        await asyncio.to_thread(self._write, spooled)

    def _write(self, spooled: Spooled) -> None:
        final = self.path(spooled.blob.sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists() and final.stat().st_size == spooled.blob.size:
            os.utime(final)  # the same bytes again: the collector counts from now
            return
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(spooled.file, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def stat(self, sha256: str) -> BlobInfo | None:
        try:
            st = self.path(sha256).stat()
        except (FileNotFoundError, BlobMissing):
            return None
        return BlobInfo(sha256, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    async def _raw(self, sha256: str) -> AsyncIterator[bytes]:
        try:
            handle = open(self.path(sha256), "rb")  # noqa: SIM115 - closed below, across awaits
        except FileNotFoundError:
            raise BlobMissing(f"no file {sha256[:12]}… in {self.prefix}") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    async def listing(self) -> AsyncIterator[BlobInfo]:
        for path in sorted(self.base.glob("??/*")):
            if path.name.startswith(".part-"):
                continue
            st = path.stat()
            yield BlobInfo(path.name, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    async def close(self) -> None:
        return None


class S3Store(_Common):
    """Objects ``<prefix>/<sha256>`` in one bucket of an S3 API, one client per process."""

    def __init__(self, bucket: str, prefix: str, endpoint: str | None, access_key: str, secret_key: str) -> None:
        self.bucket, self.prefix, self.endpoint = bucket, prefix, endpoint
        self._keys = (access_key, secret_key)
        self._client = None
        self._stack = None
        self._opening = asyncio.Lock()

    async def client(self):
        if self._client is not None:
            return self._client
        async with self._opening:
            if self._client is None:
                from contextlib import AsyncExitStack

                from aiobotocore.config import AioConfig
                from aiobotocore.session import get_session

                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    get_session().create_client(
                        "s3",
                        endpoint_url=self.endpoint,
                        aws_access_key_id=self._keys[0],
                        aws_secret_access_key=self._keys[1],
                        region_name="us-east-1",
                        config=AioConfig(
                            # Content-MD5 is the integrity check every S3 API implements; the
                            # newer checksum headers are not (S3Proxy refuses them).
                            request_checksum_calculation="when_required",
                            response_checksum_validation="when_required",
                            connect_timeout=5,
                            read_timeout=30,
                            retries={"max_attempts": 3, "mode": "standard"},
                            max_pool_connections=20,
                        ),
                    )
                )
                self._stack = stack
        return self._client

    def key(self, sha256: str) -> str:
        return f"{self.prefix}/{sha256}"

    async def _commit(self, spooled: Spooled) -> None:
        async with unavailable_as_503("store"):
            await self._put(spooled)

    async def _put(self, spooled: Spooled) -> None:
        client = await self.client()
        await client.put_object(
            Bucket=self.bucket,
            Key=self.key(spooled.blob.sha256),
            Body=spooled.file,
            ContentLength=spooled.blob.size,
            ContentMD5=spooled.md5,
            ContentType=spooled.blob.media_type,
        )

    async def stat(self, sha256: str) -> BlobInfo | None:
        client = await self.client()
        async with unavailable_as_503("read"):
            try:
                head = await client.head_object(Bucket=self.bucket, Key=self.key(sha256))
            except client.exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return BlobInfo(sha256, head["ContentLength"], head["LastModified"])

    async def _raw(self, sha256: str) -> AsyncIterator[bytes]:
        client = await self.client()
        try:
            obj = await client.get_object(Bucket=self.bucket, Key=self.key(sha256))
        except client.exceptions.NoSuchKey:
            raise BlobMissing(f"no file {sha256[:12]}… in {self.prefix}") from None
        async with obj["Body"] as body:
            async for chunk in body.iter_chunks(CHUNK):
                yield chunk

    async def delete(self, sha256: str) -> None:
        client = await self.client()
        await client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    async def listing(self) -> AsyncIterator[BlobInfo]:
        client = await self.client()
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/"):
            for item in page.get("Contents", []):
                yield BlobInfo(item["Key"].rsplit("/", 1)[-1], item["Size"], item["LastModified"])

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()


@asynccontextmanager
async def unavailable_as_503(what: str):
    """The S3 API not answering, or answering with a server error, is the store being
    unavailable (503, retried by callers), not a bug of the request (500)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except BotoCoreError as exc:
        raise StoreUnavailable(f"the file store cannot {what} now ({type(exc).__name__}); try again shortly") from exc
    except ClientError as exc:
        if int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)) >= 500:
            raise StoreUnavailable(f"the file store cannot {what} now; try again shortly") from exc
        raise
    except (OSError, asyncio.TimeoutError) as exc:
        raise StoreUnavailable(f"the file store cannot {what} now ({type(exc).__name__}); try again shortly") from exc


def open_store(url: str, prefix: str, access_key: str | None = None, secret_key: str | None = None) -> BlobStore:
    """``file:///abs/path`` or ``s3://bucket?endpoint=http://127.0.0.1:58333`` (with its keys,
    else ``LGSP_S3_ACCESS_KEY`` / ``LGSP_S3_SECRET_KEY``)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStore(Path(parsed.path), prefix)
    if parsed.scheme == "s3" and parsed.netloc:
        endpoint = parse_qs(parsed.query).get("endpoint", [None])[0]
        access = access_key or os.environ.get("LGSP_S3_ACCESS_KEY")
        secret = secret_key or os.environ.get("LGSP_S3_SECRET_KEY")
        if not access or not secret:
            raise ValueError("an s3:// file store needs LGSP_S3_ACCESS_KEY and LGSP_S3_SECRET_KEY")
        return S3Store(parsed.netloc, prefix, endpoint, access, secret)
    raise ValueError(f"LGSP_FILES_URL {url!r}: expected file:///path or s3://bucket?endpoint=…")


# ---------------------------------------------------------------- over HTTP


class FileStored(BaseModel):
    """What an upload answers: the claim check to name the file by."""

    sha256: str = Field(description="The file's SHA-256: name it by this in a dossier's documents")
    size: int = Field(ge=1, le=1 << 30)
    media_type: str = Field(description="Judged from the file's bytes")


class FileOut(BaseModel):
    """One of a dossier's files, as listed to those who may open it."""

    sha256: str
    name: str
    media_type: str
    size: int
    role: str = Field(description="component, supplement or result")
    component: str | None = None
    reused_from: str | None = None
    url: str = Field(description="Where to open it (streamed)")


# The upload's body in the OpenAPI document: raw bytes, bounded (the service's own limit,
# LGSP_FILE_MAX_BYTES, may be lower). The declared type is informative: the bytes decide.
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary", "maxLength": 20_000_000}}},
        "description": "The file's bytes: a PDF, or a JPEG or PNG scan",
    }
}


def content_disposition(name: str) -> str:
    """RFC 6266 with RFC 5987's UTF-8 form, so that Vietnamese file names arrive intact."""
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"inline; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


async def file_response(store: BlobStore, sha256: str, name: str, media_type: str) -> StreamingResponse:
    """The file, streamed as it is read and hashed (never held whole in memory)."""
    info = await store.stat(sha256)
    if info is None:
        raise BlobMissing(f"the file {name!r} is not in the file store")
    return StreamingResponse(
        store.read(sha256),
        media_type=media_type,
        headers={
            "content-length": str(info.size),
            "content-disposition": content_disposition(name),
            "etag": f'"{sha256}"',
            "x-content-sha256": sha256,
            "cache-control": "private, no-store",
        },
    )
