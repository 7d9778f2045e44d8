"""The downloaded origin of a video, kept in the media store while its AI tasks may need it.

The media job stores it as soon as the origin is downloaded and checked, and then requests the
video's AI subtitles at once: an ASR worker on any machine (workers share only the database, the
broker and the media store) recognises the speech from it while the renditions are being made,
instead of waiting for them. The origin rather than an audio-only extract: recognition then decodes
exactly what the renditions are made from, on the same clock (audio that starts after the picture
keeps its offset), whatever the codecs; on the local store it is a hard link to the download, with S3
one streamed upload.

It is not public: its name has no suffix the file route serves, and with S3 it is uploaded without
the public ACL. It is deleted once nothing needs it: when the video's job has ended and none of the
video's AI tasks is unfinished. Whichever of the two ends last deletes it (each looks after its own
commit, so at least one of them sees the other done); the reaper sweeps what a crash left, and
deleting the video removes it with the video's other files.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import ColumnElement, exists, select, update

from vodscribe.config import Settings
from vodscribe.db.session import session_scope
from vodscribe.db.statuses import UNFINISHED, JobState
from vodscribe.db.tables import AITask, Video
from vodscribe.storage.video_files import media_store

log = logging.getLogger(__name__)

#: Where the origin is kept, under the video's key.
SOURCE = "source/origin"


def store(settings: Settings, key: str, path: Path) -> str:
    """Put the downloaded origin at ``path`` into the media store; returns its name there."""
    media_store(settings).put_file(key, SOURCE, path)
    return SOURCE


def _unneeded() -> ColumnElement[bool]:
    """Videos that keep a source nothing needs any more: the job ended, no AI task is unfinished."""
    unfinished = exists().where(AITask.video_id == Video.id, AITask.status.in_(UNFINISHED))
    return Video.asr_source.is_not(None) & (Video.job_state == JobState.DONE) & ~unfinished


def release(settings: Settings, video_id: int) -> bool:
    """Delete the video's stored source if nothing needs it any more; True if it was deleted.

    Never raises: what it could not delete now, the reaper tries again (:func:`release_unneeded`)."""
    try:
        return _release(settings, video_id)
    except Exception:
        log.exception("could not delete the stored source of video %s; the reaper tries again", video_id)
        return False


def _release(settings: Settings, video_id: int) -> bool:
    with session_scope(settings.db_url) as s:
        video = s.scalars(select(Video).where(Video.id == video_id, _unneeded())).first()
        if video is None or video.asr_source is None:
            return False
        key, name = video.key, video.asr_source
    # The file first: a failure leaves the name recorded, so the next pass tries again. A task that
    # still reads the name meanwhile finds no file and falls back to a rendition.
    media_store(settings).delete_file(key, name)
    with session_scope(settings.db_url) as s:
        s.execute(update(Video).where(Video.id == video_id, Video.asr_source == name).values(asr_source=None))
    log.info("video %s: stored source deleted", video_id)
    return True


def release_unneeded(settings: Settings) -> list[int]:
    """Delete every stored source nothing needs any more (the reaper's sweep); returns the videos."""
    with session_scope(settings.db_url) as s:
        ids = list(s.scalars(select(Video.id).where(_unneeded())))
    return [video_id for video_id in ids if release(settings, video_id)]
