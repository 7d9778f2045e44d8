"""Processing a hosted video in a worker: download and check the origin (or take the uploaded one),
keep it in the media store and request the AI subtitles right away (an ASR worker recognises the
speech while this job makes the renditions), transcode the renditions, package HLS, take a
screenshot, then turn the video ready with the AI subtitles that finished meanwhile attached and the
master playlist published.

Like AI tasks, a run is claimed with a conditional update and keeps a heartbeat; the reaper sends a
video whose worker died to another one. Every step overwrites its own outputs, so a re-run is harmless,
and the AI subtitles are requested once (a re-run finds them requested).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from vodscribe import metrics
from vodscribe.config import Settings
from vodscribe.db.session import changed, session_scope
from vodscribe.db.statuses import JobState, RenditionStatus, VideoStatus
from vodscribe.db.tables import Rendition, Video, utcnow
from vodscribe.errors import Cancelled, FetchError, MediaError, NotMediaError, TooLargeError
from vodscribe.logs import working_on
from vodscribe.media.clip import Clip, check_cut, cut
from vodscribe.media.fetch import download, parse_headers
from vodscribe.media.hls import mpegts_start, package_hls
from vodscribe.media.probe import MediaInfo, check_duration, probe
from vodscribe.media.transcode import plan_renditions, screenshot, transcode
from vodscribe.queue import dispatch_video
from vodscribe.services import uploads, video_sources, webhooks
from vodscribe.services.subtitles import (
    HLS_META,
    AIPlan,
    SubtitleError,
    attach_finished,
    create_ai_tasks,
    parse_ai_plan,
    publish,
)
from vodscribe.storage.video_files import media_store
from vodscribe.storage.workspace import workspace
from vodscribe.worker import jobs
from vodscribe.worker.heartbeat import Heartbeat
from vodscribe.worker.jobs import VIDEO_JOBS

log = logging.getLogger(__name__)

#: Errors about getting the file: the video stays ``empty`` with the reason (as Gcore does).
FETCH_ERRORS = (FetchError, NotMediaError, TooLargeError)


def _ours(video_id: int, attempt: int) -> Any:
    return jobs.ours(VIDEO_JOBS, video_id, attempt)


@dataclass(frozen=True, slots=True)
class _Run:
    """A claimed processing run: what it works on, read once when it was claimed."""

    video_id: int
    attempt: int
    key: str
    origin_url: str | None
    uploaded: str | None  # the uploaded file's name in the media store, processed instead of origin_url
    headers: dict[str, str]  # origin_http_headers, for every attempt's download
    clip: Clip | None  # clip_start_seconds / clip_duration_seconds


def _claim(settings: Settings, video_id: int) -> _Run | None:
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        if video is None or not (video.origin_url or video.uploaded_source):
            return None
        attempt = jobs.claim(
            s, VIDEO_JOBS, video, stale_after_s=settings.stale_after_s, max_attempts=settings.max_attempts
        )
        if attempt is None:
            return None
        headers = parse_headers(video.origin_http_headers) if video.origin_http_headers else {}
        clip = None
        if video.clip_start_seconds is not None:
            clip = Clip(video.clip_start_seconds, video.clip_duration_seconds)
        return _Run(video_id, attempt, video.key, video.origin_url, video.uploaded_source, headers, clip)


def run_video(settings: Settings, video_id: int) -> str:
    with working_on(video_id=video_id):
        run = _claim(settings, video_id)
        if run is None:
            return "SKIPPED"
        outcome = _run(settings, run)
        video_sources.release(settings, video_id)  # once the video's AI tasks have ended too
        if run.uploaded is not None:
            uploads.release(settings, video_id)  # once the job has ended (not when it is retried)
        return outcome


def _run(settings: Settings, run: _Run) -> str:
    video_id, attempt = run.video_id, run.attempt
    watch = jobs.JobWatch(settings.db_url, VIDEO_JOBS, video_id, attempt, beat_s=settings.heartbeat_s)
    with watch as beat:
        try:
            _process(settings, run, beat)
        except Cancelled:
            with session_scope(settings.db_url) as s:
                if s.get(Video, video_id) is None:  # deleted while processing: leave no files behind
                    media_store(settings).delete(run.key)
            return "CANCELLED"
        except MediaError as exc:
            _fail(settings, video_id, attempt, exc.message, empty=isinstance(exc, FETCH_ERRORS))
            metrics.FAILURES.labels(metrics.VIDEO, "media").inc()
            return VideoStatus.ERROR
        except Exception as exc:
            log.exception("video %s failed with an internal error", video_id)
            return _retry_or_fail(settings, video_id, attempt, exc)
    _count_media(settings, video_id)
    return VideoStatus.READY


def _count_media(settings: Settings, video_id: int) -> None:
    """The client's media seconds (vodscribe.metrics.MEDIA_SECONDS) of a video made ready."""
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        if video is not None and video.duration_ms:
            metrics.MEDIA_SECONDS.labels(str(video.client_id), metrics.VIDEO).inc(video.duration_ms / 1000)


def _set(settings: Settings, video_id: int, attempt: int, **values: Any) -> None:
    with session_scope(settings.db_url) as s:
        if not changed(s, _ours(video_id, attempt).values(updated_at=utcnow(), **values)):
            raise Cancelled
        if "status" in values:  # reported in the commit that makes it
            webhooks.record_video(s, settings, video_id)


def _process(settings: Settings, run: _Run, beat: Heartbeat) -> None:
    video_id, attempt, key = run.video_id, run.attempt, run.key
    store = media_store(settings)
    with workspace(settings.work_dir, f"video-{video_id}") as tmp, store.producing(key, tmp) as out:
        origin, size = _origin(settings, run, tmp, beat)
        source, info = _clipped(settings, run, origin, probe(origin), beat)
        check_duration(info, settings.max_media_duration_s)
        _set(
            settings,
            video_id,
            attempt,
            status=VideoStatus.PENDING,
            error=None,
            **_origin_fields(info, size),
        )
        rows = _rendition_rows(settings, video_id, info)
        _start_ai(settings, run, source)

        def progress(fraction: float) -> None:
            with session_scope(settings.db_url) as s:
                s.execute(
                    update(Rendition)
                    .where(Rendition.id.in_(rows))
                    .values(progress=min(99, int(100 * fraction)))
                )

        renditions = transcode(
            source,
            info,
            out,
            on_progress=progress,
            should_stop=beat.stopped,
            max_seconds=settings.max_media_duration_s,
        )
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
                .values(size=made.size, bitrate=made.bitrate, progress=100, status=RenditionStatus.COMPLETE)
            )
    _set(settings, video_id, attempt, status=VideoStatus.VIEWABLE)
    complete(settings, video_id, attempt)
    _request_ai(settings, video_id)  # a plan not requested yet: one a client changed meanwhile


def _origin(settings: Settings, run: _Run, tmp: Path, beat: Heartbeat) -> tuple[Path, int]:
    """The origin in the job's scratch folder and its size: the uploaded file (sniffed when its
    upload finished), or else the download of ``origin_url`` (sniffed as it arrives)."""
    if run.uploaded is None:
        assert run.origin_url is not None
        fetched = download(
            run.origin_url, tmp / "origin", settings=settings, should_stop=beat.stopped, headers=run.headers
        )
        return fetched.path, fetched.size
    path = media_store(settings).fetch(run.key, run.uploaded, tmp)
    if path is None:
        raise FetchError("The uploaded file is missing; upload it again.")
    if tmp not in path.parents:  # the local store's own file: later steps write beside theirs
        local = tmp / "origin"
        try:
            os.link(path, local)
        except OSError:
            shutil.copyfile(path, local)
        path = local
    return path, path.stat().st_size


def _clipped(
    settings: Settings, run: _Run, origin: Path, info: MediaInfo, beat: Heartbeat
) -> tuple[Path, MediaInfo]:
    """The file every later step works on: the origin, or the clip cut from it
    (:mod:`vodscribe.media.clip`), with what probe found in it."""
    if not info.has_video:
        raise MediaError("The file has no video track.")
    if run.clip is None or run.clip.whole:
        return origin, info
    clipped = cut(
        origin,
        info,
        run.clip,
        origin.with_name("clip.mkv"),
        should_stop=beat.stopped,
        max_seconds=settings.max_media_duration_s,
    )
    clip_info = probe(clipped)
    check_cut(run.clip, clip_info, info.duration)
    return clipped, clip_info


def complete(settings: Settings, video_id: int, attempt: int) -> None:
    """Turn the video ready, attach the AI subtitles that finished before it was, and publish the
    master playlist, in one commit under the video's row lock: an AI task ending at the same moment
    on another machine either is seen here or sees the video ready and attaches its subtitle itself
    (:func:`vodscribe.services.subtitles.attach_ai_result`), and READY always comes with its playlist."""

    def ready(session: Session) -> None:
        done = _ours(video_id, attempt).values(
            status=VideoStatus.READY,
            screenshot="screenshot.jpg",
            job_state=JobState.DONE,
            updated_at=utcnow(),
        )
        video = session.get(Video, video_id) if changed(session, done) else None
        if video is None:
            raise Cancelled
        attach_finished(session, video)
        webhooks.record_video(session, settings, video_id)

    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        if video is None:
            raise Cancelled
        publish(settings, s, video, changes=ready)


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


def _start_ai(settings: Settings, run: _Run, origin: Path) -> None:
    """Keep the checked origin where any ASR worker can read it, then request the video's AI subtitles
    now rather than after transcoding (as Gcore does): recognition and transcoding run side by side.
    Nothing for a video without audio or AI subtitles, nor again on a re-run that finds them requested
    (the origin it kept is still there: it goes only once the job has ended)."""
    with session_scope(settings.db_url) as s:
        video = s.get(Video, run.video_id)
        if video is None or video.auto_ai_requested or _auto_plan(settings, video) is None:
            return
    source = video_sources.store(settings, run.key, origin)
    _set(settings, run.video_id, run.attempt, asr_source=source)
    _request_ai(settings, run.video_id)


def _auto_plan(settings: Settings, video: Video) -> AIPlan | None:
    """The AI subtitles the video asks for (``auto_transcribe_audio_language``), or None."""
    if not video.has_audio:
        return None
    audio = video.auto_transcribe_audio_language
    if audio == "auto" and not settings.auto_transcribe_by_default:
        return None
    try:
        return parse_ai_plan(audio, video.auto_translate_subtitles_language)
    except SubtitleError:
        log.exception("video %s: its AI subtitle plan cannot be read", video.id)
        return None


def _request_ai(settings: Settings, video_id: int) -> None:
    """Create and send the video's AI tasks, once: ``auto_ai_requested`` is claimed in the transaction
    that creates them, so a re-run of the job (a retry, a redelivery) finds them requested."""
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        if video is None or video.auto_ai_requested:
            return
        plan = _auto_plan(settings, video)
        lowest = s.scalars(select(Rendition).where(Rendition.video_id == video_id).order_by(Rendition.height))
        rendition = lowest.first()
        if plan is None or rendition is None:
            return
        claim = update(Video).where(Video.id == video_id, Video.auto_ai_requested.is_(False))
        if changed(s, claim.values(auto_ai_requested=True)):
            # The tasks name the rendition they would read as Gcore's do, even before it exists.
            url = media_store(settings).url(settings.base_url, video.key, rendition.filename)
            create_ai_tasks(s, settings, video, plan, url, from_api=False)


def _fail(settings: Settings, video_id: int, attempt: int, message: str, *, empty: bool) -> None:
    with session_scope(settings.db_url) as s:
        ended = changed(
            s,
            _ours(video_id, attempt).values(
                status=VideoStatus.EMPTY if empty else VideoStatus.ERROR,
                error=message,
                job_state=JobState.DONE,
                updated_at=utcnow(),
            ),
        )
        s.execute(
            update(Rendition)
            .where(Rendition.video_id == video_id, Rendition.status == RenditionStatus.PROCESSING)
            .values(status=RenditionStatus.ERROR, error=message)
        )
        if ended:
            webhooks.record_video(s, settings, video_id)


def _retry_or_fail(settings: Settings, video_id: int, attempt: int, exc: Exception) -> str:
    if attempt >= settings.max_attempts:
        _fail(settings, video_id, attempt, jobs.internal_error(attempt, exc), empty=False)
        metrics.FAILURES.labels(metrics.VIDEO, "internal").inc()
        return VideoStatus.ERROR

    def send(countdown: float) -> None:
        dispatch_video(settings, video_id, countdown=countdown)

    jobs.retry(settings.db_url, VIDEO_JOBS, video_id, attempt, dispatch=send)
    return "retry"
