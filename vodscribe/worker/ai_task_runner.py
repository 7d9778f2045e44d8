"""Running an AI task in a worker: claim it, fetch, transcribe, store the result.

The claim, the heartbeat and every write go through :mod:`vodscribe.worker.jobs`: conditional on
the task still being this attempt's, so a task cancelled or taken over meanwhile is never
overwritten. The heartbeat also carries progress and sees a cancel (REVOKED) within a second.

A video's subtitle languages are separate tasks (as Gcore has them), released together once its
transcription has ended. The worker that claims one claims up to ``translate_together - 1`` of
the others as well and runs them side by side, each under its own claim and heartbeat, so that
their translations share the LLM's parallel decoding; the messages of the others then find them
taken and are skipped. Recognition (the Whisper engine) is used by one task at a time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from vodscribe import languages, metrics
from vodscribe.config import Settings
from vodscribe.db.session import changed, session_scope
from vodscribe.db.statuses import RenditionStatus, TaskStatus
from vodscribe.db.tables import AITask, Rendition, Video, utcnow
from vodscribe.engines.results import SpeechSegment
from vodscribe.engines.whisper import Decoding, WhisperEngine, engine_for
from vodscribe.errors import Cancelled, MediaError, UnsupportedTranslation
from vodscribe.logs import working_on
from vodscribe.media.fetch import download
from vodscribe.models.store import ModelError
from vodscribe.queue import dispatch_transcription
from vodscribe.schemas.ai_tasks import (
    FailureResult,
    ResultSegment,
    ResultWord,
    Subtitle,
    TaskData,
    TranscriptionResult,
)
from vodscribe.services import task_uploads, translation_backends, video_sources, webhooks
from vodscribe.services.ai_tasks import release_waiting
from vodscribe.services.subtitles import attach_ai_result, publish
from vodscribe.services.translation_backends import translators_for
from vodscribe.speech.cues import concatenated_text
from vodscribe.speech.subtitle_formats import (
    InvalidSubtitlesError,
    parse_subtitles,
    to_subtitles_json,
    to_vtt,
)
from vodscribe.speech.subtitle_translation import require
from vodscribe.speech.text_subtitles import translate_cues
from vodscribe.speech.transcription import Transcript, transcribe_file
from vodscribe.speech.vocabulary import Vocabulary
from vodscribe.storage.video_files import media_store
from vodscribe.storage.workspace import workspace
from vodscribe.worker import jobs, recognition_cache
from vodscribe.worker.jobs import AI_TASKS

log = logging.getLogger(__name__)

FETCH_SHARE = 0.15  # progress 0-15 % is the download, the rest is transcription
#: Held while a task uses the Whisper engine (one at a time: tasks run side by side share it).
_RECOGNISING = threading.Lock()


@dataclass
class Claim:
    task_id: str
    attempt: int
    task_data: TaskData
    progress: int
    video_id: int | None = None
    attach_subtitle: bool = False
    client_id: int | None = None
    after_task_id: str | None = None  # the task it waited for (a video's languages share one)
    upload: str | None = None  # the media a speech request uploaded (services.task_uploads)


def claim(settings: Settings, task_id: str) -> Claim | None:
    """The task, now STARTED under a new attempt number; None when it is not ours to run."""
    with session_scope(settings.db_url) as s:
        task = s.get(AITask, task_id)
        if task is None:
            return None
        progress = max(task.progress, 1)
        attempt = jobs.claim(
            s,
            AI_TASKS,
            task,
            stale_after_s=settings.stale_after_s,
            max_attempts=settings.max_attempts,
            values={"started_at": task.started_at or utcnow(), "progress": progress},
        )
        if attempt is None:
            return None
        data = TaskData.model_validate(task.task_data)
        return Claim(
            task_id,
            attempt,
            data,
            progress,
            task.video_id,
            task.attach_subtitle,
            task.client_id,
            task.after_task_id,
            task.upload,
        )


class Watcher(jobs.JobWatch):
    """Heartbeat, progress and cancel detection for an AI task."""

    def __init__(self, settings: Settings, claim: Claim) -> None:
        super().__init__(settings.db_url, AI_TASKS, claim.task_id, claim.attempt, beat_s=settings.heartbeat_s)
        self.claim = claim
        self._progress: int | None = None
        self._highest = claim.progress
        self._lock = threading.Lock()
        self._partial: list[dict[str, Any]] = []
        self._partial_changed = False

    def add_segments(self, segments: Sequence[SpeechSegment]) -> None:
        """Publish more final segments (a request that streams reads them with the task)."""
        with self._lock:
            start = len(self._partial)
            self._partial += [_segment_out(start + i, seg).model_dump() for i, seg in enumerate(segments)]
            self._partial_changed = True

    def set_progress(self, percent: int) -> None:
        """Record progress; it never goes backwards (a retried attempt starts from the top again)."""
        with self._lock:
            if percent > self._highest:
                self._highest = percent
                self._progress = percent

    def _take_progress(self) -> int | None:
        with self._lock:
            progress, self._progress = self._progress, None
        return progress

    def _take_partial(self) -> list[dict[str, Any]] | None:
        with self._lock:
            changed_, self._partial_changed = self._partial_changed, False
            return list(self._partial) if changed_ else None

    def values(self) -> dict[str, Any]:
        progress, partial = self._take_progress(), self._take_partial()
        out: dict[str, Any] = {} if progress is None else {"progress": progress}
        if partial is not None:
            out["partial"] = partial
        return out

    def finish(self) -> None:
        values = self.values()
        if values:
            with session_scope(self.db_url) as s:
                s.execute(_ours(self.claim).values(**values))


def _ours(claim: Claim) -> Any:
    return jobs.ours(AI_TASKS, claim.task_id, claim.attempt)


def run_task(settings: Settings, task_id: str) -> str:
    """Run one task to SUCCESS/FAILURE (or leave it REVOKED). Returns the final status seen."""
    with working_on(task_id=task_id):
        claimed = claim(settings, task_id)
        if claimed is None:
            log.info("task %s is not claimable; skipping", task_id)
            return "SKIPPED"
        with working_on(video_id=claimed.video_id):
            status = _run_together(settings, [claimed, *claim_siblings(settings, claimed)])
            if claimed.video_id is not None:  # the last of the video's tasks deletes its stored source
                video_sources.release(settings, claimed.video_id)
        if claimed.upload is not None:  # kept while a retry may need it; released once it has ended
            task_uploads.release(settings, task_id)
        return status


def claim_siblings(settings: Settings, claimed: Claim) -> list[Claim]:
    """Up to ``translate_together - 1`` other tasks released with ``claimed`` (the other subtitle
    languages of its video), claimed for this worker; none for a task that translates nothing."""
    # The stored code as it is: a bad one is the task's own error, met (and retried) when it runs.
    if settings.translate_together < 2 or not claimed.task_data.subtitles_language:
        return []
    if claimed.after_task_id is None or claimed.client_id is None:
        return []
    with session_scope(settings.db_url) as s:
        ids = s.scalars(
            select(AITask.id)
            .where(
                AITask.after_task_id == claimed.after_task_id,
                AITask.client_id == claimed.client_id,
                AITask.id != claimed.task_id,
                # Not one waiting to be retried: its wait is deliberate.
                AITask.status.in_((TaskStatus.RECEIVED, TaskStatus.PENDING)),
            )
            .order_by(AITask.created_at, AITask.id)
            .limit(settings.translate_together - 1)
        ).all()
    return [c for c in (claim(settings, task_id) for task_id in ids) if c is not None]


def _run_together(settings: Settings, claims: list[Claim]) -> str:
    """Run the claimed tasks side by side; the status of the first. The others' outcomes are counted
    here (their own messages will find them taken)."""
    if len(claims) == 1:
        return _run(settings, claims[0])
    log.info("running %d tasks of the video together: %s", len(claims), ", ".join(c.task_id for c in claims))

    def one(c: Claim) -> str:
        with working_on(task_id=c.task_id, video_id=c.video_id):
            return _run(settings, c)

    with ThreadPoolExecutor(len(claims), thread_name_prefix="ai-task") as pool:
        statuses = list(pool.map(one, claims))
    for status in statuses[1:]:
        metrics.JOBS.labels(metrics.AI_TASK, status.lower()).inc()
    return statuses[0]


def _run(settings: Settings, claimed: Claim) -> str:
    task_id = claimed.task_id
    with Watcher(settings, claimed) as watcher:
        try:
            result = _execute(settings, claimed, watcher)
        except Cancelled:
            log.info("task %s cancelled", task_id)
            return TaskStatus.REVOKED
        except UnsupportedTranslation as exc:
            hint = translation_backends.missing(settings)
            message = f"{exc.message} On this server {hint}." if hint else exc.message
            return _fail(settings, claimed, "translation", message)
        except MediaError as exc:
            return _fail(settings, claimed, "media", exc.message)
        except ModelError as exc:  # a pulled model changed on disk: no retry loads it any better
            log.error("task %s: %s", task_id, exc)
            return _fail(settings, claimed, "model", f"Server model error: {exc}")
        except Exception as exc:
            log.exception("task %s failed with an internal error", task_id)
            return _retry_or_fail(settings, claimed, exc)
    return finish_task(settings, claimed, TaskStatus.SUCCESS, result)


def _fail(settings: Settings, claimed: Claim, reason: str, message: str) -> str:
    """End the task as FAILURE with ``message``, counted under ``reason`` (vodscribe.metrics.FAILURES)."""
    status = finish_task(settings, claimed, TaskStatus.FAILURE, FailureResult(error=message))
    if status == TaskStatus.FAILURE:
        metrics.FAILURES.labels(metrics.AI_TASK, reason).inc()
    return status


def _execute(settings: Settings, claimed: Claim, watcher: Watcher) -> TranscriptionResult:
    data = claimed.task_data
    if data.from_text:
        return _translate_text(settings, claimed, watcher)
    audio_language, subtitles_language = data.audio, data.subtitles
    translators = translators_for(settings)
    if (
        subtitles_language is not None
        and audio_language is not None
        and audio_language is not subtitles_language
    ):
        require(translators, audio_language, subtitles_language)  # a known pair fails before any download
    if data.model:  # a speech request's model by name (checked, when it was asked, to be pulled)
        settings = settings.model_copy(update={"asr_model": data.model})
    engine = engine_for(settings)
    vocabulary = Vocabulary.of(data.vocabulary or [])
    # The vocabulary's hotwords are given where a term may have been said (speech.transcription).
    asked = Decoding(data.prompt, data.temperature)
    with workspace(settings.work_dir, claimed.task_id) as tmp:

        def on_bytes(done: int, total: int | None) -> None:
            if total:
                watcher.set_progress(max(1, int(100 * FETCH_SHARE * done / total)))

        if claimed.video_id is not None:
            source = _video_source(settings, claimed.video_id, tmp)
        elif claimed.upload is not None:
            found = task_uploads.fetch(settings, claimed.task_id, claimed.upload, tmp)
            if found is None:
                raise MediaError("The uploaded file is gone.")
            source = found
        else:
            source = download(
                data.url,
                tmp / "source",
                settings=settings,
                on_progress=on_bytes,
                should_stop=watcher.stopped,
            ).path
        watcher.set_progress(int(100 * FETCH_SHARE))
        # What changes the words besides the model: a prompt, a temperature, a vocabulary.
        variant = recognition_cache.variant(asked, [*data.vocabulary] if data.vocabulary else None)
        key = recognition_cache.key_for(
            settings, source, audio_language.whisper if audio_language else None, variant
        )
        earlier = recognition_cache.find(settings, key)
        # Whisper's own translation (into English) works on the audio even when the words are known.
        speech = subtitles_language is languages.ENGLISH and any(t.from_speech for t in translators)
        with _RECOGNISING if earlier is None or speech else contextlib.nullcontext():
            if earlier is None:  # a task run beside this one may have recognised the file meanwhile
                earlier = recognition_cache.find(settings, key)
            if earlier is not None:
                log.info("task %s: reusing the recognition of this file", claimed.task_id)
            started = time.monotonic()
            # Only a task that holds the engine may change how it decodes (one that reuses a kept
            # recognition without holding it decodes nothing).
            held = earlier is None or speech
            with engine.asking(asked) if held else contextlib.nullcontext():
                transcript = transcribe_file(
                    source,
                    engine,
                    language=audio_language.whisper if audio_language else None,
                    subtitles_language=subtitles_language,
                    translators=translators,
                    on_progress=lambda f: watcher.set_progress(
                        int(100 * (FETCH_SHARE + (1 - FETCH_SHARE) * f * 0.99))
                    ),
                    should_stop=watcher.stopped,
                    max_seconds=settings.max_media_duration_s,
                    reuse=earlier,
                    on_segments=watcher.add_segments if data.stream else None,
                    vocabulary=vocabulary,
                )
            if earlier is None and transcript.recognized is not None:
                recognition_cache.keep(settings, key, transcript.recognized)
    _count_media(engine, claimed, transcript.media.duration, time.monotonic() - started, earlier is None)
    if transcript.translated_by:
        log.info("task %s translated by %s", claimed.task_id, ", ".join(transcript.translated_by))
    return build_result(transcript, audio_language, subtitles_language, with_segments=bool(data.segments))


def _translate_text(settings: Settings, claimed: Claim, watcher: Watcher) -> TranscriptionResult:
    """A subtitle's own text translated (:mod:`vodscribe.speech.text_subtitles`): no media, no
    recognition; the result is shaped as a translation task's."""
    data = claimed.task_data
    source, target = data.audio, data.subtitles
    if source is None or target is None:
        raise MediaError("A subtitle translation needs its language and the language to translate into.")
    with workspace(settings.work_dir, claimed.task_id) as tmp:
        path = task_uploads.fetch(settings, claimed.task_id, claimed.upload, tmp) if claimed.upload else None
        if path is None:
            raise MediaError("The subtitle text is gone.")
        text = path.read_text(encoding="utf-8")
    try:
        cues = parse_subtitles(text)
    except InvalidSubtitlesError as exc:
        raise MediaError(f"The subtitle text is not valid: {exc}") from exc
    done = translate_cues(
        cues,
        source,
        target,
        translators_for(settings),
        on_progress=lambda f: watcher.set_progress(max(1, int(99 * f))),
        should_stop=watcher.stopped,
        vocabulary=Vocabulary.of(data.vocabulary or []),
    )
    log.info("task %s: %d cues translated by %s", claimed.task_id, len(done.cues), done.backend)
    return TranscriptionResult(
        subtitles=[Subtitle.model_validate(line) for line in to_subtitles_json(done.cues)],
        vttContent=to_vtt(done.cues),
        concatenated_text=concatenated_text(done.cues),
        languages=[source.b, target.b],
        speech_detected=bool(done.cues),
    )


def _count_media(
    engine: WhisperEngine, claimed: Claim, duration: float | None, took: float, recognised: bool
) -> None:
    """The client's media seconds, and the real-time factor of this model and device when the speech
    was recognised (not taken from a kept recognition, which would make it look faster)."""
    if not duration or duration <= 0:
        return
    if recognised:
        metrics.REALTIME_FACTOR.labels(engine.name, engine.device).observe(took / duration)
    client = claimed.task_data.client_id
    metrics.MEDIA_SECONDS.labels("" if client is None else str(client), metrics.AI_TASK).inc(duration)


def _video_source(settings: Settings, video_id: int, scratch: Path) -> Path:
    """A hosted video's media, read from storage instead of over HTTP: the origin its media job
    stored (so recognition need not wait for the renditions; every task of the video reads the same
    bytes and so reuses one recognition), else, once that is gone or for a video processed before
    it was kept, the lowest complete rendition."""
    with session_scope(settings.db_url) as s:
        video = s.get(Video, video_id)
        if video is None:
            raise MediaError("The video was deleted.")
        rendition = s.scalars(
            select(Rendition)
            .where(Rendition.video_id == video_id, Rendition.status == RenditionStatus.COMPLETE)
            .order_by(Rendition.height)
        ).first()
        key = video.key
        names = [name for name in (video.asr_source, rendition.filename if rendition else None) if name]
    store = media_store(settings)
    for name in names:
        path = store.fetch(key, name, scratch)
        if path is not None:
            return path
    raise MediaError("The video has no stored source or transcoded rendition to read.")


def build_result(
    transcript: Transcript,
    audio: languages.Language | None,
    subtitles_language: languages.Language | None,
    *,
    with_segments: bool = False,
) -> TranscriptionResult:
    """The Gcore ``ai_results_transcribe`` object; ``with_segments`` adds the recognised segments and
    the media's duration (our extension, for the speech requests' own formats)."""
    spoken = [languages.from_whisper(c).b for c in transcript.languages]
    codes = [audio.b] if audio is not None else spoken
    if subtitles_language is not None and subtitles_language.b not in codes:
        codes = [*codes, subtitles_language.b]
    cues = list(transcript.cues)
    confidence = None
    if audio is None and transcript.confidence:
        confidence = {code: round(p, 3) for code, p in zip(spoken, transcript.confidence, strict=True)}
    return TranscriptionResult(
        subtitles=[Subtitle.model_validate(line) for line in to_subtitles_json(cues)],
        vttContent=to_vtt(cues),
        concatenated_text=concatenated_text(cues),
        languages=codes[:5],
        speech_detected=transcript.speech_detected,
        language_confidence=confidence,
        duration=round(transcript.media.duration or 0.0, 3) if with_segments else None,
        segments=[_segment_out(i, seg) for i, seg in enumerate(transcript.segments)]
        if with_segments
        else None,
    )


def _segment_out(index: int, seg: SpeechSegment) -> ResultSegment:
    return ResultSegment(
        id=index,
        start=round(seg.start, 3),
        end=round(seg.end, 3),
        text=seg.text,
        language=seg.language,
        avg_logprob=round(seg.avg_logprob, 4),
        no_speech_prob=round(seg.no_speech_prob, 4),
        compression_ratio=round(seg.compression_ratio, 4),
        words=[
            ResultWord(
                start=round(w.start, 3), end=round(w.end, 3), word=w.text, probability=round(w.probability, 4)
            )
            for w in seg.words
        ],
    )


def finish_task(
    settings: Settings, claimed: Claim, status: str, result: TranscriptionResult | FailureResult
) -> str:
    """Store the outcome if the task is still ours; a ready video's subtitle is attached in the same
    commit (one still being processed gets it from its media job as it becomes ready)."""
    attached = False
    with session_scope(settings.db_url) as s:
        updated = changed(
            s,
            _ours(claimed).values(status=status, result=result.stored(), progress=100, completed_at=utcnow()),
        )
        if not updated:
            return s.scalar(select(AITask.status).where(AITask.id == claimed.task_id)) or "GONE"
        webhooks.record_task(s, settings, claimed.task_id)
        video_id = claimed.video_id if claimed.attach_subtitle else None
        if status == TaskStatus.SUCCESS and video_id is not None and isinstance(result, TranscriptionResult):
            attached = attach_ai_result(s, video_id, claimed.task_id, claimed.task_data, result)
    with session_scope(settings.db_url) as s:
        release_waiting(s, settings, claimed.task_id)
    if attached:
        with session_scope(settings.db_url) as s:
            video = s.get(Video, claimed.video_id)
            if video is not None:
                publish(settings, s, video)
    return status


def _retry_or_fail(settings: Settings, claimed: Claim, exc: Exception) -> str:
    if claimed.attempt >= settings.max_attempts:
        return _fail(settings, claimed, "internal", jobs.internal_error(claimed.attempt, exc))

    def send(countdown: float) -> None:
        dispatch_transcription(settings, claimed.task_id, countdown=countdown)

    if jobs.retry(settings.db_url, AI_TASKS, claimed.task_id, claimed.attempt, dispatch=send):
        return TaskStatus.RETRY
    return "GONE"
