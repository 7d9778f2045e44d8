"""Direct upload of a video's file from a computer (Gcore's TUS flow), on the service side.

``GET /streaming/videos/{id}/upload`` hands out a token bound to the client and the video; a TUS
client then creates an upload at ``/upload/`` with that token and the ``video_id`` and ``client_id``
metadata, sends the bytes (:mod:`vodscribe.storage.uploads` keeps them on disk), and when the last byte
has arrived :func:`finish` checks it is media, puts it into the media store beside the video's other
files (privately, as ``source/upload-<upload id>``: any worker can read it, as with S3) and queues the video's
media job, which processes it exactly like a downloaded origin.

The token is ``<expiry>.<nonce>.<HMAC-SHA256(key, "upload:<client>:<video>:<expiry>:<nonce>")>``
(hex), checkable by every process that shares the service's key (:mod:`vodscribe.keys`). It makes
one upload: its use is recorded on disk beside the uploads.

An upload is bound to its client and video for its whole life: it remembers the video's key (its
client and unguessable slug), finishes only into that video, and deleting the video ends it. What
uploads may take is bounded per client (open uploads, bytes still declared, the client's request
rate) and per disk: a creation reserves every byte it declares, so uploads created together cannot
take the disk below ``upload_min_free_bytes``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import ColumnElement, select, update

from vodscribe import metrics
from vodscribe.config import Settings
from vodscribe.db.session import changed, session_scope
from vodscribe.db.statuses import JobState, VideoStatus
from vodscribe.db.tables import Video, utcnow
from vodscribe.errors import NotMediaError
from vodscribe.keys import server_key
from vodscribe.media.probe import SNIFF_BYTES, sniff_or_raise
from vodscribe.queue import dispatch_video
from vodscribe.services import webhooks
from vodscribe.storage.uploads import TokenUsed, UploadFiles, UploadInfo
from vodscribe.storage.video_files import media_store

log = logging.getLogger(__name__)

#: Where a finished upload is kept in the media store, under the video's key, until its job ends
#: (``source/upload-<upload id>``: two uploads of one video finishing together never share a file).
UPLOADED = "source/upload"
#: The longest ``filename`` kept (it is only shown).
MAX_FILENAME = 255


class UploadError(Exception):
    """Refused: ``status`` and a message for the person uploading (``retry_after`` seconds for 429)."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def files(settings: Settings) -> UploadFiles:
    return UploadFiles(settings.uploads_dir)


# --- tokens ----------------------------------------------------------------------------------------
def _mac(settings: Settings, client_id: int, video_id: int, expires: int, nonce: str) -> str:
    message = f"upload:{client_id}:{video_id}:{expires}:{nonce}".encode()
    return hmac.new(server_key(settings), message, hashlib.sha256).hexdigest()


#: ``<expiry>.<nonce>.<mac>``: ASCII digits and lowercase hex only (``str.isdigit`` also takes "²").
TOKEN = re.compile(r"([0-9]{1,12})\.([0-9a-f]{16})\.([0-9a-f]{64})")


def issue_token(settings: Settings, client_id: int, video_id: int) -> str:
    expires = int(time.time() + settings.upload_token_ttl_s)
    nonce = secrets.token_hex(8)  # each token its own: one token, one upload
    return f"{expires}.{nonce}.{_mac(settings, client_id, video_id, expires, nonce)}"


def check_token(settings: Settings, token: str, client_id: int, video_id: int) -> str:
    """Raise 401 for a token that is malformed, not for this client and video, or expired; returns
    the mark its use is recorded under (``<expiry>.<mac>``)."""
    parts = TOKEN.fullmatch(token)
    if parts is None:
        raise UploadError(
            401, "The upload token is malformed; get one from GET /streaming/videos/{id}/upload."
        )
    expires_text, nonce, mac = parts.groups()
    expires = int(expires_text)
    if not hmac.compare_digest(mac, _mac(settings, client_id, video_id, expires, nonce)):
        raise UploadError(401, "The upload token is not valid for this video_id and client_id.")
    if expires < time.time():
        raise UploadError(
            401, "The upload token has expired; get a new one from GET /streaming/videos/{id}/upload."
        )
    return f"{expires}.{mac}"


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


def create(settings: Settings, new: NewUpload, count_request: Callable[[int], float]) -> UploadInfo:
    """Check a TUS creation request and make the upload on disk."""
    limit = settings.upload_limit
    if new.length > limit:
        raise UploadError(413, f"Upload-Length {new.length} is larger than the limit of {limit} bytes.")
    mark = check_token(settings, new.token, new.client_id, new.video_id)
    wait = count_request(new.client_id)  # after the token: nobody spends another client's requests
    if wait > 0:
        raise UploadError(429, "Too many requests, try later", retry_after=wait)
    with session_scope(settings.db_url) as s:
        video = s.get(Video, new.video_id)
        if video is None or video.client_id != new.client_id:
            raise UploadError(404, "Video not found")
        check_uploadable(video)
        key = video.key
    filename = new.filename[:MAX_FILENAME] if new.filename else None
    expires = time.time() + settings.upload_expiry_s
    store = files(settings)
    with store.creating():  # what is open is counted and added to by one creation at a time
        _check_room(settings, store, new)
        try:
            store.use_token(mark)
        except TokenUsed:
            raise UploadError(
                409, "The upload token has been used; get a new one from GET /streaming/videos/{id}/upload."
            ) from None
        info = store.create(new.length, new.client_id, new.video_id, filename, expires, key)
    metrics.UPLOADS.labels("created").inc()
    return info


def _check_room(settings: Settings, store: UploadFiles, new: NewUpload) -> None:
    """429 past the client's share of open uploads, 507 when the disk cannot hold every open upload's
    declared bytes and this one's above ``upload_min_free_bytes``."""
    opened = store.open_uploads()
    own = [upload for upload in opened if upload.info.client_id == new.client_id]
    if len(own) >= settings.upload_max_open_per_client:
        raise UploadError(
            429,
            f"Too many unfinished uploads ({len(own)}); finish or terminate one before starting another.",
        )
    declared = sum(upload.missing for upload in own) + new.length
    if declared > settings.upload_client_bytes:
        raise UploadError(
            429,
            f"Your unfinished uploads would declare {declared} bytes, more than the "
            f"{settings.upload_client_bytes} allowed; finish or terminate one first.",
        )
    reserved = sum(upload.missing for upload in opened)
    if store.free_bytes() - reserved - new.length < settings.upload_min_free_bytes:
        raise UploadError(507, "Not enough free disk space for this upload; try again later.")


def finish(settings: Settings, info: UploadInfo) -> None:
    """The last byte has arrived: check the file is media, store it for the media job and queue the
    job. A file that is no media ends the video in error (NotMediaError is raised); the upload is
    removed either way."""
    store = files(settings)
    path = store.data_path(info.id)
    try:
        _check_owner(settings, info)
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
        try:
            sniff_or_raise(head, uploaded=True)
        except NotMediaError as exc:
            _refuse(settings, info, f"The uploaded file is not a video: {exc.message}")
            raise
        _queue(settings, info, path)
        metrics.UPLOADS.labels("finished").inc()
    finally:
        store.remove(info.id)


def _owned(info: UploadInfo) -> ColumnElement[bool]:
    """The video the upload was made for, and no other (not a later video given a reused id)."""
    condition = (Video.id == info.video_id) & (Video.client_id == info.client_id)
    if info.video_key:  # uploads made before the key was recorded: client and id only
        slug = info.video_key.partition("_")[2]
        condition = condition & (Video.slug == slug)
    return condition


def _check_owner(settings: Settings, info: UploadInfo) -> None:
    with session_scope(settings.db_url) as s:
        if s.scalar(select(Video.id).where(_owned(info))) is None:
            raise UploadError(404, "The video was deleted during the upload.")


def _refuse(settings: Settings, info: UploadInfo, message: str) -> None:
    with session_scope(settings.db_url) as s:
        refused = changed(
            s,
            update(Video)
            .where(_owned(info), Video.job_state.not_in((JobState.QUEUED, JobState.RUNNING)))
            .values(status=VideoStatus.ERROR, error=message, updated_at=utcnow()),
        )
        if refused:
            webhooks.record_video(s, settings, info.video_id)


def _queue(settings: Settings, info: UploadInfo, path: Path) -> None:
    with session_scope(settings.db_url) as s:
        video = s.scalars(select(Video).where(_owned(info))).first()
        if video is None:
            raise UploadError(404, "The video was deleted during the upload.")
        check_uploadable(video)  # another upload of the same video may have finished first
        key, before = video.key, video.uploaded_source
    # The file before the row: a job never finds its upload missing. Each upload has its own name,
    # so of two uploads finishing together, the one the row names is the one acknowledged.
    name = f"{UPLOADED}-{info.id}"
    store = media_store(settings)
    store.put_file(key, name, path)
    with session_scope(settings.db_url) as s:
        queued = update(Video).where(
            _owned(info),
            Video.origin_url.is_(None),
            Video.status.in_((VideoStatus.EMPTY, VideoStatus.ERROR)),
            Video.job_state.not_in((JobState.QUEUED, JobState.RUNNING)),
        )
        now = utcnow()
        values = {
            "uploaded_source": name,
            "upload_filename": info.filename,
            "status": VideoStatus.EMPTY,
            "error": None,
            "job_state": JobState.QUEUED,
            "job_attempts": 0,
            "heartbeat_at": now,
            "updated_at": now,
        }
        if not changed(s, queued.values(**values)):
            store.delete_file(key, name)
            raise UploadError(409, "The video's file has been received and is being processed.")
    if before is not None and before != name:  # a failed earlier upload's file, not yet released
        store.delete_file(key, before)
    try:
        dispatch_video(settings, info.video_id)
    except Exception:  # QUEUED with its heartbeat: the reaper sends it again
        log.exception("video %s: could not send its job; the reaper sends it again", info.video_id)


def sweep_expired(settings: Settings) -> list[str]:
    """Remove unfinished uploads past their expiry, and the marks of expired tokens (the reaper's
    sweep); returns the uploads' ids."""
    store = files(settings)
    now = time.time()
    store.sweep_tokens(now)
    return [upload_id for upload_id in store.expired(now) if store.sweep(upload_id)]


def end_for_video(settings: Settings, video_id: int) -> int:
    """End the video's open uploads (it is being deleted): a PATCH to them is then 404, and one
    already writing finds its video gone when it finishes. Returns how many were ended."""
    store = files(settings)
    ended = [u.info.id for u in store.open_uploads() if u.info.video_id == video_id]
    for upload_id in ended:
        store.remove(upload_id)
    return len(ended)


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
