"""The TUS 1.0 server at ``/upload/`` for Gcore's direct upload (docs: §3.7 of the spec).

Our own small, strict server rather than the ``tuspyserver`` package: that package (4.4.3) has no
checksum extension and always has concatenation and deferred length on, while Gcore's flow needs
neither and a checksum is what lets a chunk damaged in transit be refused (460) instead of processed.

Extensions: creation, termination, checksum (sha1, md5, sha256) and expiration. A creation request
names the video in its ``Upload-Metadata`` (``video_id``, ``client_id``, ``token`` from
``GET /streaming/videos/{id}/upload``, optional ``filename``); later requests are authorised by the
upload's unguessable id in the ``Location`` answered. Bodies are streamed to disk chunk by chunk
(bounded memory, a read timeout per chunk), an offset counts only bytes synced to disk, and PATCHes
of one upload are serialised by a file lock (across processes). The last byte hands the file to
:func:`vodscribe.services.uploads.finish`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import re
import time
import unicodedata
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import IO

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from vodscribe import metrics
from vodscribe.config import Settings
from vodscribe.errors import NotMediaError
from vodscribe.schemas.errors import ErrorBody, responses
from vodscribe.services import uploads
from vodscribe.storage.uploads import Gone, UploadFiles, UploadInfo, UploadState

PREFIX = "/upload/"
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum,expiration"
CHECKSUMS = {"sha1": "sha1", "md5": "md5", "sha256": "sha256"}
#: A PATCH whose client sends nothing for this long is ended (what arrived is kept).
READ_TIMEOUT_S = 60.0
#: How long a request waits for another request on the same upload to let go before 423.
LOCK_WAIT_S = 10.0
#: How often a PATCH waiting for its client's next bytes looks whether another request wants the lock.
RELEASE_POLL_S = 0.2
#: ``Upload-Metadata`` values longer than this are refused (the token is ~80 characters).
MAX_METADATA_VALUE = 1024

router = APIRouter(prefix="/upload", tags=["Direct upload (TUS)"])


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **extra}


def _error(status: int, message: str, **extra: str) -> JSONResponse:
    return JSONResponse(ErrorBody(error=message).model_dump(), status, headers=_headers(**extra))


def _upload_error(exc: uploads.UploadError) -> JSONResponse:
    if exc.retry_after is None:
        return _error(exc.status, exc.message)
    return _error(exc.status, exc.message, **{"Retry-After": str(max(1, round(exc.retry_after)))})


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _expires(epoch: float) -> str:
    return formatdate(epoch, usegmt=True)


def _check_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise _Refused(412, f"Tus-Resumable: {TUS_VERSION} is required.")


#: A non-negative integer as TUS sends it: ASCII digits only (``str.isdigit`` also takes "²" and "①",
#: which ``int`` then refuses).
NUMBER = re.compile(r"[0-9]{1,19}")


def _number(request: Request, name: str) -> int:
    text = request.headers.get(name)
    if text is None or not NUMBER.fullmatch(text):
        raise _Refused(400, f"{name} must be given as a non-negative integer.")
    return int(text)


def _metadata(header: str) -> dict[str, str]:
    """``Upload-Metadata``: ``key base64value`` pairs separated by commas."""
    found: dict[str, str] = {}
    for pair in header.split(","):
        key, _, encoded = pair.strip().partition(" ")
        if not key:
            continue
        try:
            value = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _Refused(400, f"Upload-Metadata: the value of {key!r} is not base64 UTF-8.") from exc
        if len(value) > MAX_METADATA_VALUE:
            raise _Refused(400, f"Upload-Metadata: the value of {key!r} is too long.")
        found[key] = value
    return found


def _int_field(metadata: dict[str, str], name: str) -> int:
    value = metadata.get(name, "")
    if not NUMBER.fullmatch(value) or int(value) >= 2**31:
        raise _Refused(400, f"Upload-Metadata must name {name} (an integer).")
    return int(value)


def _filename(metadata: dict[str, str]) -> str | None:
    """The ``filename`` shown for the video; one with control characters (NUL, newlines) is refused."""
    name = metadata.get("filename") or None
    if name is not None and any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise _Refused(400, "Upload-Metadata: filename must not contain control characters.")
    return name


NOT_FOUND = "Upload not found (unknown, finished, terminated or expired)."


def _known(store: UploadFiles, upload_id: str) -> tuple[UploadInfo, UploadState]:
    info = store.info(upload_id)
    try:
        state = store.state(upload_id) if info is not None else None
    except OSError:  # removed meanwhile
        state = None
    if info is None or state is None:
        raise _Refused(404, NOT_FOUND)
    if state.expires < time.time():
        store.sweep(upload_id)
        raise _Refused(410, "The upload has expired; create a new one.")
    return info, state


def _try_lock(store: UploadFiles, upload_id: str) -> IO[str] | None:
    try:
        return store.try_lock(upload_id)
    except Gone as exc:
        raise _Refused(404, NOT_FOUND) from exc


def _checksum(header: str | None) -> tuple[str, bytes] | None:
    if header is None:
        return None
    name, _, encoded = header.strip().partition(" ")
    algorithm = CHECKSUMS.get(name.lower())
    if algorithm is None:
        raise _Refused(400, f"Upload-Checksum: unsupported algorithm {name!r} (use {', '.join(CHECKSUMS)}).")
    try:
        return algorithm, base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error as exc:
        raise _Refused(400, "Upload-Checksum: the digest is not base64.") from exc


@router.options("/", status_code=204, response_class=Response)
@router.options("/{upload_id}", status_code=204, response_class=Response, include_in_schema=False)
def options(request: Request) -> Response:
    """What this TUS server offers."""
    return Response(
        status_code=204,
        headers=_headers(
            **{
                "Tus-Version": TUS_VERSION,
                "Tus-Extension": EXTENSIONS,
                "Tus-Max-Size": str(_settings(request).upload_limit),
                "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
            }
        ),
    )


@router.post(
    "/",
    status_code=201,
    response_class=Response,
    responses=responses(400, 401, 404, 409, 412, 413, 429, 507),
)
async def create_upload(request: Request) -> Response:
    """Creation: ``Upload-Length`` and ``Upload-Metadata`` (``video_id``, ``client_id``, ``token``,
    ``filename``). The ``Location`` answered is where the bytes go."""
    settings = _settings(request)
    try:
        _check_version(request)
        if "upload-defer-length" in request.headers:
            raise _Refused(400, "Upload-Defer-Length is not supported: send Upload-Length.")
        length = _number(request, "upload-length")
        metadata = _metadata(request.headers.get("upload-metadata", ""))
        token = metadata.get("token")
        if not token:
            raise _Refused(
                401, "Upload-Metadata must carry the token from GET /streaming/videos/{id}/upload."
            )
        new = uploads.NewUpload(
            length=length,
            token=token,
            video_id=_int_field(metadata, "video_id"),
            client_id=_int_field(metadata, "client_id"),
            filename=_filename(metadata),
        )
        info = await anyio.to_thread.run_sync(uploads.create, settings, new, request.app.state.limiter.hit)
    except _Refused as exc:
        return _error(exc.status, exc.message)
    except uploads.UploadError as exc:
        return _upload_error(exc)
    base = (settings.public_url or str(request.base_url)).rstrip("/")
    state = uploads.files(settings).state(info.id)
    return Response(
        status_code=201,
        headers=_headers(
            **{
                "Location": f"{base}{PREFIX}{info.id}",
                "Upload-Offset": "0",
                "Upload-Expires": _expires(state.expires),
            }
        ),
    )


@router.head(
    "/{upload_id}",
    status_code=200,
    response_class=Response,
    responses={
        404: {"description": "Unknown, finished, terminated or expired upload (no body: HEAD)"},
        410: {"description": "The upload has expired"},
        412: {"description": "Tus-Resumable: 1.0.0 missing"},
    },
)
def upload_offset(upload_id: str, request: Request) -> Response:
    """How much of the upload has arrived (``Upload-Offset``)."""
    store = uploads.files(_settings(request))
    try:
        _check_version(request)
        info, state = _known(store, upload_id)
    except _Refused as exc:
        return Response(status_code=exc.status, headers=_headers())
    return Response(
        status_code=200,
        headers=_headers(
            **{
                "Upload-Offset": str(state.offset),
                "Upload-Length": str(info.length),
                "Upload-Expires": _expires(state.expires),
            }
        ),
    )


@router.delete("/{upload_id}", status_code=204, response_class=Response, responses=responses(404, 412, 423))
async def terminate_upload(upload_id: str, request: Request) -> Response:
    """Termination: the upload and its bytes are deleted."""
    store = uploads.files(_settings(request))
    try:
        _check_version(request)
        _known(store, upload_id)
        handle = await _lock(store, upload_id)
        try:
            await anyio.to_thread.run_sync(store.remove, upload_id)  # gigabytes, off the event loop
        finally:
            store.unlock(handle)
    except _Refused as exc:
        return _error(exc.status, exc.message)
    metrics.UPLOADS.labels("terminated").inc()
    return Response(status_code=204, headers=_headers())


@router.patch(
    "/{upload_id}",
    status_code=204,
    response_class=Response,
    responses=responses(400, 404, 409, 410, 412, 413, 415, 422, 423, 460),
)
async def append_to_upload(upload_id: str, request: Request) -> Response:
    """Bytes from ``Upload-Offset`` on (``application/offset+octet-stream``), optionally with
    ``Upload-Checksum``; the answer's ``Upload-Offset`` counts what is safely on disk."""
    settings = _settings(request)
    store = uploads.files(settings)
    try:
        _check_version(request)
        info, _ = _known(store, upload_id)
        content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != "application/offset+octet-stream":
            raise _Refused(415, "Content-Type must be application/offset+octet-stream.")
        offset = _number(request, "upload-offset")
        checksum = _checksum(request.headers.get("upload-checksum"))
        lock = await _lock(store, upload_id)
        try:
            done, expires = await _append(settings, store, info, offset, checksum, request)
            if done == info.length:  # under the lock: one request finishes it, once
                await anyio.to_thread.run_sync(uploads.finish, settings, info)
        finally:
            store.unlock(lock)
    except _Refused as exc:
        return _error(exc.status, exc.message)
    except uploads.UploadError as exc:
        return _upload_error(exc)
    except NotMediaError as exc:
        return _error(422, f"The uploaded file is not a video: {exc.message}")
    except FileNotFoundError:  # ended meanwhile (its video deleted): what was sent is gone with it
        return _error(404, NOT_FOUND)
    return Response(
        status_code=204,
        headers=_headers(**{"Upload-Offset": str(done), "Upload-Expires": _expires(expires)}),
    )


async def _lock(store: UploadFiles, upload_id: str) -> IO[str]:
    """The upload's lock; its holder is asked to let go (it ends its request with what it has)."""
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        handle = _try_lock(store, upload_id)
        if handle is not None:
            return handle
        if time.monotonic() > deadline:
            raise _Refused(423, "Another request is writing to this upload; try again when it ends.")
        store.request_release(upload_id)
        await asyncio.sleep(0.05)


async def _next_chunk(chunks: AsyncIterator[bytes], store: UploadFiles, upload_id: str) -> bytes | None:
    """The body's next chunk, ``b""`` once it has all arrived; None when its client went quiet for
    ``READ_TIMEOUT_S`` or went away, or another request asked for the upload."""
    waiting = asyncio.ensure_future(chunks.__anext__())
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=RELEASE_POLL_S)
            if done:
                return waiting.result()
            if time.monotonic() > deadline or store.release_requested(upload_id):
                return None
    except StopAsyncIteration:
        return b""
    except ClientDisconnect:
        return None
    finally:
        if not waiting.done():
            # Not awaited: a cancellation of this request must not be taken for the read's own.
            waiting.add_done_callback(lambda task: task.cancelled() or task.exception())
            waiting.cancel()


async def _append(
    settings: Settings,
    store: UploadFiles,
    info: UploadInfo,
    offset: int,
    checksum: tuple[str, bytes] | None,
    request: Request,
) -> tuple[int, float]:
    """Write the body at ``offset`` (under the lock); returns the new acknowledged offset and the
    upload's new expiry."""
    current = store.state(info.id).offset
    if offset != current:
        raise _Refused(409, f"Upload-Offset {offset} does not match the upload's offset {current}.")
    remaining = info.length - current
    declared = request.headers.get("content-length")
    if declared is not None and NUMBER.fullmatch(declared) and int(declared) > remaining:
        raise _Refused(413, f"The body is longer than the {remaining} bytes the upload still needs.")
    hasher = hashlib.new(checksum[0]) if checksum else None
    written = 0
    interrupted = False
    with store.open_for_append(info.id) as handle:
        chunks = request.stream().__aiter__()
        while True:
            chunk = await _next_chunk(chunks, store, info.id)
            if chunk is None:
                interrupted = True
                break
            if not chunk:  # the body's end (Starlette's stream yields data chunks, then b"")
                break
            if written + len(chunk) > remaining:
                store.discard_unacknowledged(info.id, handle)
                raise _Refused(413, f"The body is longer than the {remaining} bytes the upload still needs.")
            await anyio.to_thread.run_sync(handle.write, chunk)
            metrics.UPLOAD_BYTES.inc(len(chunk))
            if hasher is not None:
                hasher.update(chunk)
            written += len(chunk)
        if checksum is not None and hasher is not None:
            if interrupted:  # a partial chunk cannot be checked: none of it counts
                store.discard_unacknowledged(info.id, handle)
                raise _Refused(400, "The body ended early; send the chunk again.")
            if hasher.digest() != checksum[1]:
                store.discard_unacknowledged(info.id, handle)
                raise _Refused(460, f"Upload-Checksum mismatch: the {checksum[0]} of the body differs.")
        # Without a checksum, what arrived before an interruption counts: the client resumes after it.
        expires = time.time() + settings.upload_expiry_s
        done = await anyio.to_thread.run_sync(store.acknowledge, info.id, handle, expires)
        return done, expires
