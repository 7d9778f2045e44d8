"""Direct upload of a video's file from a computer (Gcore's TUS flow), on the service side.

``GET /streaming/videos/{id}/upload`` hands out a token bound to the client and the video; a TUS
client then creates an upload at ``/upload/`` with that token and the ``video_id`` and ``client_id``
metadata, sends the bytes (:mod:`vodscribe.storage.uploads` keeps them on disk), and when the last byte
has arrived :func:`finish` checks it is media, puts it into the media store beside the video's other
files (privately, as ``source/upload``: any worker can read it, as with S3) and queues the video's
media job, which processes it exactly like a downloaded origin.

The token is ``<expiry>.<HMAC-SHA256(secret, "upload:<client_id>:<video_id>:<expiry>")>`` (hex):
nothing to store, checkable by every process that shares the secret (``upload_secret``, else a random
key created once in ``<data_dir>/upload-secret``, mode 0600).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select, update

from vodscribe.config import Settings
from vodscribe.db.models import Video, utcnow
from vodscribe.db.session import changed, session_scope
from vodscribe.db.statuses import JobState, VideoStatus
from vodscribe.errors import NotMediaError
from vodscribe.media.probe import SNIFF_BYTES, sniff_or_raise
from vodscribe.queue import dispatch_video
from vodscribe.services import webhooks
from vodscribe.storage.media import media_store
from vodscribe.storage.uploads import UploadFiles, UploadInfo

log = logging.getLogger(__name__)

#: Where a finished upload is kept in the media store, under the video's key, until its job ends.
UPLOADED = "source/upload"
#: The longest ``filename`` kept (it is only shown).
MAX_FILENAME = 255


class UploadError(Exception):
    """Refused: ``status`` and a message for the person uploading."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def files(settings: Settings) -> UploadFiles:
    return UploadFiles(settings.uploads_dir)


# --- tokens ----------------------------------------------------------------------------------------
def _secret(settings: Settings) -> bytes:
    if settings.upload_secret is not None:
        return settings.upload_secret.get_secret_value().encode()
    path = settings.data_dir / "upload-secret"
    try:  # O_EXCL: of processes starting together, one creates it and the others read it
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # the creator may not have written it yet
            key = path.read_bytes().strip()
            if key:
                return key
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty; delete it to create a new upload secret") from None
    key = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
        out.flush()
        os.fsync(out.fileno())
    return key


def _mac(settings: Settings, client_id: int, video_id: int, expires: int) -> str:
    message = f"upload:{client_id}:{video_id}:{expires}".encode()
    return hmac.new(_secret(settings), message, hashlib.sha256).hexdigest()


def issue_token(settings: Settings, client_id: int, video_id: int) -> str:
    expires = int(time.time() + settings.upload_token_ttl_s)
    return f"{expires}.{_mac(settings, client_id, video_id, expires)}"


def check_token(settings: Settings, token: str, client_id: int, video_id: int) -> None:
    """Raise 401 for a token that is malformed, not for this client and video, or expired."""
    expires_text, _, mac = token.partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or not mac:
        raise UploadError(
            401, "The upload token is malformed; get one from GET /streaming/videos/{id}/upload."
        )
    expires = int(expires_text)
    if not hmac.compare_digest(mac, _mac(settings, client_id, video_id, expires)):
        raise UploadError(401, "The upload token is not valid for this video_id and client_id.")
    if expires < time.time():
        raise UploadError(
            401, "The upload token has expired; get a new one from GET /streaming/videos/{id}/upload."
        )


# --- which videos take an upload ---------------------------------------------------------------------
def check_uploadable(video: Video) -> None:
    """409 unless the video waits for its file: no ``origin_url``, not queued, processing or done."""
    if video.origin_url:
        raise UploadError(
            409, "The video has an origin_url; its file is downloaded from there, not uploaded."
        )
    if video.job_state in (JobState.QUEUED, JobState.RUNNING):
        raise UploadError(409, "The video's file has been received and is being processed.")
    if video.status not in (VideoStatus.EMPTY, VideoStatus.ERROR):
        raise UploadError(409, f"The video already has its file (status {video.status}).")


# --- the TUS upload's life ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewUpload:
    length: int
    token: str
    video_id: int
    client_id: int
    filename: str | None


def create(settings: Settings, new: NewUpload) -> UploadInfo:
    """Check a TUS creation request and make the upload on disk."""
    limit = settings.upload_limit
    if new.length > limit:
        raise UploadError(413, f"Upload-Length {new.length} is larger than the limit of {limit} bytes.")
    check_token(settings, new.token, new.client_id, new.video_id)
    with session_scope(settings.db_url) as s:
        video = s.get(Video, new.video_id)
        if video is None or video.client_id != new.client_id:
            raise UploadError(404, "Video not found")
        check_uploadable(video)
    store = files(settings)
    if store.free_bytes() - new.length < settings.upload_min_free_bytes:
        raise UploadError(507, "Not enough free disk space for this upload; try again later.")
    filename = new.filename[:MAX_FILENAME] if new.filename else None
    expires = time.time() + settings.upload_expiry_s
    return store.create(new.length, new.client_id, new.video_id, filename, expires)


def finish(settings: Settings, info: UploadInfo) -> None:
    """The last byte has arrived: check the file is media, store it for the media job and queue the
    job. A file that is no media ends the video in error (NotMediaError is raised); the upload is
    removed either way."""
    store = files(settings)
    path = store.data_path(info.id)
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
        try:
            sniff_or_raise(head)
        except NotMediaError as exc:
            _refuse(settings, info.video_id, f"The uploaded file is not a video: {exc.message}")
            raise
        _queue(settings, info, path)
    finally:
        store.remove(info.id)


def _refuse(settings: Settings, video_id: int, message: str) -> None:
    with session_scope(settings.db_url) as s:
        refused = changed(
            s,
            update(Video)
            .where(Video.id == video_id, Video.job_state.not_in((JobState.QUEUED, JobState.RUNNING)))
            .values(status=VideoStatus.ERROR, error=message, updated_at=utcnow()),
        )
        if refused:
            webhooks.record_video(s, settings, video_id)


def _queue(settings: Settings, info: UploadInfo, path: Path) -> None:
    with session_scope(settings.db_url) as s:
        video = s.get(Video, info.video_id)
        if video is None:
            raise UploadError(404, "The video was deleted during the upload.")
        check_uploadable(video)  # another upload of the same video may have finished first
        key = video.key
    # The file before the row: a job never finds its upload missing. A concurrent finisher of the
    # same video writes the same name; the conditional update below lets one of them queue the job.
    media_store(settings).put_file(key, UPLOADED, path)
    with session_scope(settings.db_url) as s:
        queued = update(Video).where(
            Video.id == info.video_id,
            Video.origin_url.is_(None),
            Video.job_state.not_in((JobState.QUEUED, JobState.RUNNING)),
        )
        now = utcnow()
        values = {
            "uploaded_source": UPLOADED,
            "upload_filename": info.filename,
            "status": VideoStatus.EMPTY,
            "error": None,
            "job_state": JobState.QUEUED,
            "job_attempts": 0,
            "heartbeat_at": now,
            "updated_at": now,
        }
        if not changed(s, queued.values(**values)):
            raise UploadError(409, "The video's file has been received and is being processed.")
    try:
        dispatch_video(settings, info.video_id)
    except Exception:  # QUEUED with its heartbeat: the reaper sends it again
        log.exception("video %s: could not send its job; the reaper sends it again", info.video_id)


def sweep_expired(settings: Settings) -> list[str]:
    """Remove unfinished uploads past their expiry (the reaper's sweep); returns their ids."""
    store = files(settings)
    return [upload_id for upload_id in store.expired(time.time()) if store.sweep(upload_id)]


def release(settings: Settings, video_id: int) -> bool:
    """Delete the video's uploaded file once its job has ended; True if deleted. Never raises: the
    reaper tries again (:func:`release_finished`)."""
    try:
        with session_scope(settings.db_url) as s:
            video = s.get(Video, video_id)
            if video is None or video.uploaded_source is None or video.job_state != JobState.DONE:
                return False
            key, name = video.key, video.uploaded_source
        media_store(settings).delete_file(key, name)
        with session_scope(settings.db_url) as s:
            s.execute(
                update(Video)
                .where(Video.id == video_id, Video.job_state == JobState.DONE, Video.uploaded_source == name)
                .values(uploaded_source=None)
            )
        return True
    except Exception:
        log.exception("could not delete the uploaded file of video %s; the reaper tries again", video_id)
        return False


def release_finished(settings: Settings) -> list[int]:
    """Delete the uploaded files of every video whose job has ended (the reaper's sweep)."""
    with session_scope(settings.db_url) as s:
        ids = list(
            s.scalars(
                select(Video.id).where(Video.uploaded_source.is_not(None), Video.job_state == JobState.DONE)
            )
        )
    return [video_id for video_id in ids if release(settings, video_id)]
