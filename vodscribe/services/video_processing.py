"""Processing a hosted video in a worker: download the origin, transcode the renditions, package HLS,
take a screenshot, publish the master playlist, then ask for AI subtitles.

Like AI tasks, a run is claimed with a conditional update and keeps a heartbeat; the reaper sends a
video whose worker died to another one. Every step overwrites its own outputs, so a re-run is harmless.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, update

from vodscribe.config import Settings
from vodscribe.db.models import Rendition, Video, utcnow
from vodscribe.db.session import session_scope
from vodscribe.pipeline.errors import Cancelled, FetchError, MediaError, NotMediaError, TooLargeError
from vodscribe.pipeline.fetch import download
from vodscribe.pipeline.hls import mpegts_start, package_hls
from vodscribe.pipeline.probe import MediaInfo, probe
from vodscribe.pipeline.transcode import plan_renditions, screenshot, transcode
from vodscribe.queue import dispatch_video
from vodscribe.services.heartbeat import Heartbeat
from vodscribe.services.processing import worker_name
from vodscribe.services.subtitles import HLS_META, SubtitleError, parse_ai_plan, publish, request_ai_subtitles
from vodscribe.storage.media import media_store
from vodscribe.storage.workspace import workspace

log = logging.getLogger(__name__)

#: Errors about getting the file: the video stays ``empty`` with the reason (as Gcore does).
FETCH_ERRORS = (FetchError, NotMediaError, TooLargeError)


class _VideoHeartbeat(Heartbeat):
    """Keeps ``heartbeat_at`` fresh while a run is ours; stops when the video was deleted or handed
    to another worker (see :class:`Heartbeat`)."""

    def __init__(self, settings: Settings, video_id: int, attempt: int) -> None:
        super().__init__(f"video-{video_id}", settings.heartbeat_s)
        self.settings, self.video_id, self.attempt = settings, video_id, attempt

    def tick(self) -> bool:
        with session_scope(self.settings.db_url) as s:
            return bool(s.execute(_ours(self.video_id, self.attempt).values(heartbeat_at=utcnow())).rowcount)


def _ours(video_id: int, attempt: int) -> Any:
    return update(Video).where(
        Video.id == video_id, Video.job_state == "running", Video.job_attempts == attempt
    )


@dataclass(frozen=True, slots=True)
class _Run:
    """A claimed processing run: what it works on, read once when it was claimed."""

    video_id: int
    attempt: int
    key: str
    origin_url: str


def _claim(settings: Settings, video_id: int) -> _Run | None:
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        if video is None or video.job_state != "queued" or not video.origin_url:
            return None
        attempt = video.job_attempts + 1
        changed = s.execute(
            update(Video)
            .where(
                Video.id == video_id, Video.job_state == "queued", Video.job_attempts == video.job_attempts
            )
            .values(
                job_state="running", job_attempts=attempt, job_worker=worker_name(), heartbeat_at=utcnow()
            )
        ).rowcount
        return _Run(video_id, attempt, video.key, video.origin_url) if changed else None


def run_video(settings: Settings, video_id: int) -> str:
    run = _claim(settings, video_id)
    if run is None:
        return "SKIPPED"
    attempt = run.attempt
    with _VideoHeartbeat(settings, video_id, attempt) as beat:
        try:
            _process(settings, run, beat)
        except Cancelled:
            with session_scope(settings.db_url) as s:
                if s.get(Video, video_id) is None:  # deleted while processing: leave no files behind
                    media_store(settings).delete(run.key)
            return "CANCELLED"
        except MediaError as exc:
            _fail(settings, video_id, attempt, exc.message, empty=isinstance(exc, FETCH_ERRORS))
            return "error"
        except Exception as exc:
            log.exception("video %s failed with an internal error", video_id)
            return _retry_or_fail(settings, video_id, attempt, exc)
    return "ready"


def _set(settings: Settings, video_id: int, attempt: int, **values: Any) -> None:
    with session_scope(settings.db_url) as s:
        if not s.execute(_ours(video_id, attempt).values(updated_at=utcnow(), **values)).rowcount:
            raise Cancelled


def _process(settings: Settings, run: _Run, beat: Heartbeat) -> None:
    video_id, attempt, key, origin_url = run.video_id, run.attempt, run.key, run.origin_url
    store = media_store(settings)
    with workspace(settings.work_dir, f"video-{video_id}") as tmp, store.producing(key, tmp) as out:
        fetched = download(origin_url, tmp / "origin", settings=settings, should_stop=beat.stopped)
        info = probe(fetched.path)
        if not info.has_video:
            raise MediaError("The file has no video track.")
        _set(settings, video_id, attempt, status="pending", error=None, **_origin_fields(info, fetched.size))
        rows = _rendition_rows(settings, video_id, info)

        def progress(fraction: float) -> None:
            with session_scope(settings.db_url) as s:
                s.execute(
                    update(Rendition)
                    .where(Rendition.id.in_(rows))
                    .values(progress=min(99, int(100 * fraction)))
                )

        renditions = transcode(fetched.path, info, out, on_progress=progress, should_stop=beat.stopped)
        variants = [package_hls(r, out, should_stop=beat.stopped) for r in renditions]
        screenshot(renditions[-1].path, info.duration, out / "screenshot.jpg")
        meta = {
            "variants": [asdict(v) for v in variants],
            "mpegts": mpegts_start(out, variants[0]),
            "duration": info.duration,
        }
        (out / HLS_META).write_text(json.dumps(meta))
    # Stored (uploaded, with S3): every rendition is playable from here on.
    with session_scope(settings.db_url) as s:
        for made in renditions:
            s.execute(
                update(Rendition)
                .where(Rendition.video_id == video_id, Rendition.name == made.name)
                .values(size=made.size, bitrate=made.bitrate, progress=100, status="complete")
            )
    _set(settings, video_id, attempt, status="viewable")
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        assert video is not None
        publish(settings, s, video)
    _set(settings, video_id, attempt, status="ready", screenshot="screenshot.jpg", job_state="done")
    _request_ai(settings, video_id)


def _origin_fields(info: MediaInfo, size: int) -> dict[str, Any]:
    return {
        "duration_ms": round(info.duration * 1000),
        "origin_size": size,
        "origin_width": info.width,
        "origin_height": info.height,
        "origin_audio_channels": info.channels,
        "has_audio": info.has_audio,
    }


def _rendition_rows(settings: Settings, video_id: int, info: MediaInfo) -> list[int]:
    """Fresh ``converted_videos`` rows for this run (a re-run replaces the old ones)."""
    with session_scope(settings.db_url) as s:
        s.execute(delete(Rendition).where(Rendition.video_id == video_id))
        rows = [
            Rendition(
                video_id=video_id, name=p.name, width=p.width, height=p.height, filename=f"{p.name}.mp4"
            )
            for p in plan_renditions(info)
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def _request_ai(settings: Settings, video_id: int) -> None:
    """Gcore: with auto_transcribe_audio_language set, an AI task starts right after transcoding."""
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        if video is None or not video.has_audio:
            return
        audio = video.auto_transcribe_audio_language
        if audio == "auto" and not settings.auto_transcribe_by_default:
            return
        try:
            plan = parse_ai_plan(audio, video.auto_translate_subtitles_language)
            if plan is not None:
                request_ai_subtitles(s, settings, video, plan)
        except SubtitleError:
            log.exception("could not request AI subtitles for video %s", video_id)


def _fail(settings: Settings, video_id: int, attempt: int, message: str, *, empty: bool) -> None:
    with session_scope(settings.db_url) as s:
        s.execute(
            _ours(video_id, attempt).values(
                status="empty" if empty else "error", error=message, job_state="done", updated_at=utcnow()
            )
        )
        s.execute(
            update(Rendition)
            .where(Rendition.video_id == video_id, Rendition.status == "processing")
            .values(status="error", error=message)
        )


def _retry_or_fail(settings: Settings, video_id: int, attempt: int, exc: Exception) -> str:
    if attempt >= settings.max_attempts:
        _fail(
            settings,
            video_id,
            attempt,
            f"Internal error after {attempt} attempts ({type(exc).__name__}).",
            empty=False,
        )
        return "error"
    with session_scope(settings.db_url) as s:
        changed = s.execute(
            _ours(video_id, attempt).values(job_state="queued", heartbeat_at=utcnow())
        ).rowcount
    if changed:
        dispatch_video(settings, video_id, countdown=2.0 * attempt)
    return "retry"
