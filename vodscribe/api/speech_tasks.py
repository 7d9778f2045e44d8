"""What both speech dialects' routes do around their AI task: authenticate, take the upload in,
start the task, then wait for it (or follow its segments), cancelling it when the client hangs up.

The wait is a poll of the task's row, a few times a second, on the event loop with one short trip
to the thread pool each: a waiting request holds no thread and no connection, so a slow file does
not block the API, and any API process can answer (the task runs in whatever worker took it).
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.to_thread import run_sync
from sqlalchemy import select
from starlette.requests import Request

from vodscribe.api.deps import speech_client
from vodscribe.api.uploaded_form import UploadedForm, read_form
from vodscribe.config import Settings
from vodscribe.db.session import session_scope
from vodscribe.db.statuses import FINISHED, TaskStatus
from vodscribe.db.tables import AITask, Client
from vodscribe.schemas.ai_tasks import FailureResult, TaskData, TranscriptionResult
from vodscribe.services import ai_tasks, speech_requests
from vodscribe.services.ai_tasks import TaskError
from vodscribe.storage.workspace import incoming_folder

log = logging.getLogger(__name__)

#: An incoming file untouched this long was left by a process that died while reading it.
LEFT_OVER_S = 24 * 3600
#: How often a waiting request reads its task: from the first value up to the last.
POLL_S = (0.1, 0.5)


@dataclass(frozen=True, slots=True)
class Ended:
    """A task that has ended: SUCCESS with its result, or FAILURE/REVOKED with the reason."""

    task_id: str
    status: str
    result: TranscriptionResult | None
    error: str | None

    @property
    def internal(self) -> bool:
        """Failed on the server's side (an outage or a bug), not because of the media."""
        return self.error is not None and self.error.startswith(("Internal error", "Server model error"))

    @property
    def http_status(self) -> int:
        """The answer to a request whose task did not succeed: 500 for the server's own failure, 409
        for a cancelled task, 400 for media that could not be used."""
        return 500 if self.internal else 409 if self.status == TaskStatus.REVOKED else 400


async def client_of(request: Request, settings: Settings) -> Client:
    """The request's client (:func:`vodscribe.api.deps.speech_client`), before its body is read."""

    def lookup() -> Client:
        with session_scope(settings.db_url) as s:
            client = speech_client(request, s, settings)
            s.expunge(client)
            return client

    return await run_sync(lookup)


@contextlib.asynccontextmanager
async def uploaded(request: Request, settings: Settings, file_field: str) -> AsyncIterator[UploadedForm]:
    """The request's form, its file in the API's scratch space until the block ends."""
    incoming = incoming_folder(settings.work_dir)
    _sweep(incoming)
    target = incoming / uuid.uuid4().hex
    try:
        yield await read_form(request, file_field, target, settings.upload_limit)
    finally:
        target.unlink(missing_ok=True)
        target.with_suffix(".wav").unlink(missing_ok=True)


def _sweep(incoming: Path) -> None:
    """Delete what an API process that died mid-upload left (older than any upload takes)."""
    old = time.time() - LEFT_OVER_S
    for path in incoming.iterdir():
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < old:
                path.unlink()


async def start(
    settings: Settings, client: Client, path: Path, data: TaskData, ask: speech_requests.SpeechAsk
) -> str:
    """Store the upload and send its task (with the vocabulary ``ask`` names); returns the task's
    id (TaskError when refused)."""

    def create() -> str:
        with session_scope(settings.db_url) as s:
            owner = s.get(Client, client.id)
            if owner is None:
                raise TaskError("The client was deleted.", 401)
            return speech_requests.create(s, settings, owner, path, data, ask).id

    return await run_sync(create)


def _read(settings: Settings, task_id: str, partial: bool) -> tuple[Ended | None, list[Any]]:
    with session_scope(settings.db_url) as s:
        columns = [AITask.status, AITask.result, AITask.partial if partial else AITask.progress]
        row = s.execute(select(*columns).where(AITask.id == task_id)).one_or_none()
    if row is None:
        return Ended(task_id, TaskStatus.FAILURE, None, "The task was deleted."), []
    status, result, extra = row
    segments = list(extra or []) if partial else []
    if status not in FINISHED:
        return None, segments
    if status == TaskStatus.SUCCESS and result is not None:
        return Ended(task_id, status, TranscriptionResult.model_validate(result), None), segments
    error = FailureResult.model_validate(result).error if result else "The task ended without a result."
    return Ended(task_id, status, None, error), segments


async def cancel(settings: Settings, client: Client, task_id: str) -> None:
    """Cancel the task of a request whose client hung up (nothing if it has ended meanwhile)."""

    def do() -> None:
        with session_scope(settings.db_url) as s:
            owner = s.get(Client, client.id)
            if owner is not None:
                with contextlib.suppress(TaskError):
                    ai_tasks.cancel_task(s, settings, owner, task_id)
                    log.info("task %s cancelled: its client hung up", task_id)

    with anyio.CancelScope(shield=True):  # runs while the request itself is being cancelled
        await run_sync(do)


async def wait(request: Request, settings: Settings, client: Client, task_id: str) -> Ended | None:
    """The task once it has ended; None (the task cancelled) when the client hung up first."""
    async for ended, _ in follow(request, settings, client, task_id, partial=False):
        if ended is not None:
            return ended
    return None


async def follow(
    request: Request, settings: Settings, client: Client, task_id: str, *, partial: bool
) -> AsyncIterator[tuple[Ended | None, list[Any]]]:
    """Poll the task: yields (None, segments so far) while it runs, then (ended, segments) once; ends
    early, with the task cancelled, when the client hangs up."""
    delay = POLL_S[0]
    finished = False
    try:
        while True:
            ended, segments = await run_sync(_read, settings, task_id, partial)
            yield ended, segments
            if ended is not None:
                finished = True
                return
            if await request.is_disconnected():
                return
            await anyio.sleep(delay)
            delay = min(POLL_S[1], delay * 1.5)
    finally:
        if not finished:
            await cancel(settings, client, task_id)


def wav_from_pcm(raw: Path) -> Path:
    """Raw 16 kHz mono s16le audio (``encode=false``, as Bazarr sends it) as a WAV file beside it."""
    out = raw.with_suffix(".wav")
    with raw.open("rb") as src, wave.open(str(out), "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(16000)
        while chunk := src.read(1 << 20):
            dst.writeframesraw(chunk)
    return out
