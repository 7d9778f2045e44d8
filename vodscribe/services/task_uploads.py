"""The media a speech request uploaded (``/v1/audio/...``, ``/asr``), kept in the media store while
its AI task may need it.

Workers share only the database, the broker and the media store, so the upload goes there before
its task is sent, under the key ``task_{id}`` and a name without a suffix the file route serves (it
is never public). It is deleted once the task has ended: by the worker that ends it, by a cancel,
and by the reaper for what a crash left (:func:`release_finished`), the same way as a video's kept
source (:mod:`vodscribe.services.video_sources`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import select, update

from vodscribe.config import Settings
from vodscribe.db.session import session_scope
from vodscribe.db.statuses import UNFINISHED
from vodscribe.db.tables import AITask
from vodscribe.storage.video_files import media_store

log = logging.getLogger(__name__)

#: The upload's name under its task's key.
NAME = "source/upload"


def key(task_id: str) -> str:
    return f"task_{task_id}"


def store(settings: Settings, task_id: str, path: Path) -> str:
    """Put the uploaded file at ``path`` into the media store for ``task_id``; returns its name."""
    media_store(settings).put_file(key(task_id), NAME, path)
    return NAME


def fetch(settings: Settings, task_id: str, name: str, scratch: Path) -> Path | None:
    """The uploaded file, read from the media store (a local path, or downloaded into ``scratch``)."""
    return media_store(settings).fetch(key(task_id), name, scratch)


def release(settings: Settings, task_id: str) -> bool:
    """Delete the task's upload if the task has ended; True if it was. Never raises: what it could
    not delete now, the reaper tries again."""
    try:
        with session_scope(settings.db_url) as s:
            task = s.scalars(
                select(AITask).where(
                    AITask.id == task_id, AITask.upload.is_not(None), AITask.status.not_in(UNFINISHED)
                )
            ).first()
            if task is None or task.upload is None:
                return False
            name = task.upload
        # The file first: a failure leaves the name recorded, so the next pass tries again.
        media_store(settings).delete(key(task_id))
        with session_scope(settings.db_url) as s:
            s.execute(update(AITask).where(AITask.id == task_id, AITask.upload == name).values(upload=None))
        return True
    except Exception:
        log.exception("could not delete the upload of task %s; the reaper tries again", task_id)
        return False


def release_finished(settings: Settings) -> list[str]:
    """Delete the uploads of every task that has ended (the reaper's sweep); returns the tasks."""
    with session_scope(settings.db_url) as s:
        ids = list(
            s.scalars(select(AITask.id).where(AITask.upload.is_not(None), AITask.status.not_in(UNFINISHED)))
        )
    return [task_id for task_id in ids if release(settings, task_id)]
