"""Subtitles of a video: CRUD with strict validation, AI-generated subtitles, HLS publishing."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vodscribe import languages
from vodscribe.config import Settings
from vodscribe.db.statuses import RenditionStatus, TaskStatus, VideoStatus
from vodscribe.db.tables import AITask, Client, Rendition, Subtitle, Video
from vodscribe.media.hls import HlsVariant, SubtitleTrack, write_master, write_subtitle_playlist
from vodscribe.schemas.ai_tasks import TaskData, TranscriptionResult
from vodscribe.schemas.subtitles import BatchSubtitleIn, SubtitleOut, SubtitleUpdated
from vodscribe.schemas.vocabularies import TermItem
from vodscribe.services import vocabularies
from vodscribe.services.ai_tasks import QUEUE_UNAVAILABLE, TaskError, create_text_translation, send, withdraw
from vodscribe.speech.subtitle_formats import InvalidSubtitlesError, parse_subtitles, to_vtt
from vodscribe.storage.video_files import media_store

log = logging.getLogger(__name__)

MAX_SUBTITLE_BYTES = 5 * 1024 * 1024
#: Parsing costs by the cue (60 µs each on our 2-core machine), and a 5 MB text can hold 170,000
#: tiny ones: the cues of one subtitle (a 10-hour recording with a cue every 3 s has 12,000), of one
#: request (a batch) and of one video (its HLS playlists are rebuilt from all of them on a change)
#: are bounded too, counted before anything is parsed.
MAX_CUES = 20_000
MAX_CUES_PER_REQUEST = 20_000
MAX_CUES_PER_VIDEO = 100_000
#: What one video may hold, so that its subtitle list (which carries the texts) stays bounded.
MAX_SUBTITLES = 50
MAX_SUBTITLE_TEXT_PER_VIDEO = 20 * 1024 * 1024  # characters, all of its subtitles together
HLS_META = "hls.json"


class SubtitleError(Exception):
    """422 ``{"status": 422, "error": "Unprocessable Entity. ..."}`` (Gcore's subtitleerror422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _language(code: str | None) -> languages.Language:
    if code is None or not code.strip():
        raise SubtitleError("Unprocessable Entity. Language code is not recognized.")
    try:
        return languages.resolve(code)
    except languages.UnknownLanguageError as exc:
        raise SubtitleError(f"Unprocessable Entity. Language code is not recognized: {code!r}.") from exc


def _checked_text(text: str | None) -> str:
    if text is None or not text.strip():
        raise SubtitleError('Unprocessable Entity. The "vtt" field is empty.')
    if len(text.encode()) > MAX_SUBTITLE_BYTES:
        raise SubtitleError("Unprocessable Entity. Subtitles must be at most 5 MB.")
    if cue_count(text) > MAX_CUES:
        raise SubtitleError(f"Unprocessable Entity. Subtitles may have at most {MAX_CUES} cues.")
    try:
        parse_subtitles(text)
    except InvalidSubtitlesError as exc:
        raise SubtitleError(f"Unprocessable Entity. Invalid subtitles: {exc}") from exc
    return text


def cue_count(text: str | None) -> int:
    """An upper bound of the cues in a WebVTT or SubRip text (each has one ``-->``), counted without
    parsing it."""
    return text.count("-->") if text else 0


def check_request_cues(texts: list[str | None]) -> None:
    """Refuse a request whose subtitles have more than :data:`MAX_CUES_PER_REQUEST` cues in all."""
    if sum(cue_count(text) for text in texts) > MAX_CUES_PER_REQUEST:
        raise SubtitleError(
            f"Unprocessable Entity. One request may send at most {MAX_CUES_PER_REQUEST} cues in all."
        )


def list_subtitles(session: Session, video: Video) -> list[Subtitle]:
    return list(session.scalars(select(Subtitle).where(Subtitle.video_id == video.id).order_by(Subtitle.id)))


def list_tracks(session: Session, video: Video) -> list[tuple[int, str, str]]:
    """``(id, name, language)`` of each subtitle, in order, without loading the texts."""
    stmt = select(Subtitle.id, Subtitle.name, Subtitle.language).where(Subtitle.video_id == video.id)
    return [(row.id, row.name, row.language) for row in session.execute(stmt.order_by(Subtitle.id))]


def get_subtitle(session: Session, video: Video, subtitle_id: int) -> Subtitle | None:
    sub = session.get(Subtitle, subtitle_id)
    return sub if sub is not None and sub.video_id == video.id else None


def check_room(
    session: Session, video: Video, *, adding: int = 1, text: str = "", replacing: str = ""
) -> None:
    """Refuse ``adding`` more subtitles with ``text`` more (``replacing`` the text of the one being
    replaced) when the video would hold more than its limits. The video's row is locked meanwhile
    where the database can, so two requests cannot both take the last room."""
    session.execute(select(Video.id).where(Video.id == video.id).with_for_update())
    arrows = func.length(Subtitle.vtt) - func.length(func.replace(Subtitle.vtt, "-->", ""))
    count, total, cues = session.execute(
        select(
            func.count(Subtitle.id),
            func.coalesce(func.sum(func.length(Subtitle.vtt)), 0),
            func.coalesce(func.sum(arrows), 0),
        ).where(Subtitle.video_id == video.id)
    ).one()
    _check_limits(
        count + adding,
        total - len(replacing) + len(text),
        cues // 3 - cue_count(replacing) + cue_count(text),
    )


def _check_limits(count: int, text: int, cues: int) -> None:
    """Refuse a video with more than ``MAX_SUBTITLES`` subtitles or too much text or too many cues in
    them."""
    if count > MAX_SUBTITLES:
        raise SubtitleError(f"Unprocessable Entity. A video has at most {MAX_SUBTITLES} subtitles.")
    if text > MAX_SUBTITLE_TEXT_PER_VIDEO:
        raise SubtitleError(
            "Unprocessable Entity. A video's subtitles may hold at most "
            f"{MAX_SUBTITLE_TEXT_PER_VIDEO // (1024 * 1024)} MB of text together."
        )
    if cues > MAX_CUES_PER_VIDEO:
        raise SubtitleError(
            f"Unprocessable Entity. A video's subtitles may hold at most {MAX_CUES_PER_VIDEO} cues together."
        )


def checked_new(f: BatchSubtitleIn) -> tuple[str, str, str]:
    """``(name, language, text)`` of a new subtitle from ``f`` (name defaults to the language's);
    raises SubtitleError."""
    lang = _language(f.language)
    text = _checked_text(f.vtt)
    return ((f.name or "").strip() or lang.name)[:512], lang.b, text


def check_new_room(texts: list[str]) -> None:
    """The limits of :func:`check_room` for the subtitles of a video being created."""
    _check_limits(len(texts), sum(len(t) for t in texts), sum(cue_count(t) for t in texts))


def create_subtitle(session: Session, settings: Settings, video: Video, f: BatchSubtitleIn) -> Subtitle:
    name, language, text = checked_new(f)
    check_room(session, video, text=text)
    sub = Subtitle(video_id=video.id, name=name, language=language, vtt=text)
    session.add(sub)
    try:
        session.commit()
    except IntegrityError as exc:  # the video was deleted meanwhile (foreign key)
        session.rollback()
        raise SubtitleError("Video not found", 404) from exc
    publish(settings, session, video)
    return sub


def update_subtitle(
    session: Session, settings: Settings, video: Video, sub: Subtitle, f: BatchSubtitleIn
) -> Subtitle:
    """Change the fields the client sent (``model_fields_set``)."""
    if "language" in f.model_fields_set:
        sub.language = _language(f.language).b
    if "vtt" in f.model_fields_set:
        text = _checked_text(f.vtt)
        check_room(session, video, adding=0, text=text, replacing=sub.vtt)
        sub.vtt = text
    if "name" in f.model_fields_set:
        if not (f.name or "").strip():
            raise SubtitleError('Unprocessable Entity. The "name" field is empty.')
        sub.name = f.name.strip()[:512]  # type: ignore[union-attr]
    session.commit()
    publish(settings, session, video)
    return sub


def delete_subtitle(session: Session, settings: Settings, video: Video, sub: Subtitle) -> None:
    session.delete(sub)
    session.commit()
    publish(settings, session, video)


def subtitle_out(sub: Subtitle) -> SubtitleOut:
    return SubtitleOut(id=sub.id, name=sub.name, language=sub.language, vtt=sub.vtt)


def subtitle_updated(sub: Subtitle) -> SubtitleUpdated:
    return SubtitleUpdated(name=sub.name, language=sub.language, vtt=sub.vtt)


# --- AI subtitles ---------------------------------------------------------------------------------
#: How an AI subtitle's name ends ("English (AI-generated)", "German (AI-translated)").
AI_GENERATED = " (AI-generated)"
AI_TRANSLATED = " (AI-translated)"


@dataclass(frozen=True, slots=True)
class AIPlan:
    """What AI tasks a video should get: the spoken language (None = identify it) and the languages
    its subtitles are translated into (Gcore's ``auto_translate_subtitles_language``; each becomes
    one task's ``subtitles_language``)."""

    audio_language: languages.Language | None
    subtitles_languages: tuple[languages.Language, ...]


def parse_ai_plan(
    auto_transcribe_audio_language: str | None, auto_translate_subtitles_language: str | None
) -> AIPlan | None:
    """Gcore's two fields, as a request or a stored video holds them; None = off."""
    value = (auto_transcribe_audio_language or "disable").strip().lower()
    if value == "disable":
        return None
    try:
        lang = None if value == "auto" else languages.resolve(value)
        subtitles_languages = tuple(
            languages.parse_language_list(auto_translate_subtitles_language or "disable")
        )
    except languages.UnknownLanguageError as exc:
        raise SubtitleError(f"Unprocessable Entity. {exc}.") from exc
    return AIPlan(lang, subtitles_languages)


def request_ai_subtitles(
    session: Session, settings: Settings, video: Video, plan: AIPlan, *, from_api: bool = True
) -> list[AITask]:
    """One transcription task, plus one per subtitles language (Gcore: separate tasks), each attached
    to the video when it succeeds. A video still processing keeps the plan for its media job.

    Asked by a client (``from_api``), a broker that refuses the tasks withdraws them all and raises
    503; asked by a worker, tasks not sent stay RECEIVED for the reaper to send."""
    if video.status not in (VideoStatus.VIEWABLE, VideoStatus.READY):
        keep_plan(video, plan)
        session.commit()
        return []
    if video.has_audio is False:
        raise SubtitleError("Unprocessable Entity. The video has no audio track to transcribe.")
    source = _asr_rendition(session, video)
    url = media_store(settings).url(settings.base_url, video.key, source.filename)
    return create_ai_tasks(session, settings, video, plan, url, from_api=from_api)


def keep_plan(video: Video, plan: AIPlan) -> None:
    """Store ``plan`` as the video's auto-subtitle plan. The media job requests it, once: a plan that
    differs from the stored one is requested anew (tasks of the earlier one, if already requested,
    still run); the same plan again changes nothing."""
    audio = plan.audio_language.b if plan.audio_language else "auto"
    subtitles_languages = ",".join(t.b for t in plan.subtitles_languages) or "disable"
    stored = (video.auto_transcribe_audio_language, video.auto_translate_subtitles_language)
    if (audio, subtitles_languages) != stored:
        video.auto_ai_requested = False
    video.auto_transcribe_audio_language = audio
    video.auto_translate_subtitles_language = subtitles_languages


def create_ai_tasks(
    session: Session, settings: Settings, video: Video, plan: AIPlan, url: str, *, from_api: bool
) -> list[AITask]:
    """The tasks of ``plan``, stored (with what the session holds) and the first one sent; ``url`` is
    the rendition named in their ``task_data`` (the worker reads the video from storage)."""
    tasks = []
    wanted: list[languages.Language | None] = [None, *plan.subtitles_languages]
    # Translations of a video that has its transcription already: the speech is recognised again
    # (from the kept recognition, at no cost), but only the translations are attached; the subtitle
    # the video has, perhaps corrected by hand since, stays the only one.
    transcribed = bool(plan.subtitles_languages) and has_ai_transcription(session, video, plan.audio_language)
    if from_api:
        check_room(session, video, adding=len(wanted) - transcribed)
    for subtitles_language in wanted:
        if subtitles_language is not None and subtitles_language == plan.audio_language:
            continue
        data = TaskData(
            url=url,
            audio_language=plan.audio_language.b if plan.audio_language else None,
            subtitles_language=subtitles_language.b if subtitles_language else None,
            client_entity_data=json.dumps({"video_id": video.id}),
            client_id=video.client_id,
            vocabulary=video.vocabulary,
        )
        task = AITask(
            client_id=video.client_id,
            task_data=data.stored(),
            status=TaskStatus.RECEIVED,
            video_id=video.id,
            attach_subtitle=subtitles_language is not None or not transcribed,
        )
        session.add(task)
        tasks.append(task)
    session.flush()
    # The speech is recognised once: the translations start when the transcription has ended, and
    # reuse what it found (each still succeeds or fails on its own).
    first, *translations = tasks
    for task in translations:
        task.after_task_id = first.id
    session.commit()
    if not send(session, settings, first) and from_api:
        withdraw(session, tasks)
        raise SubtitleError(QUEUE_UNAVAILABLE, 503)
    return tasks


def request_subtitle_translation(
    session: Session,
    settings: Settings,
    client: Client,
    video: Video,
    subtitle_id: int,
    targets: str | None,
) -> list[AITask]:
    """One task per language of ``targets`` (Gcore's ``auto_translate_subtitles_language`` syntax)
    that translates the text of the video's subtitle ``subtitle_id`` as it is now, a person's
    corrections included (:mod:`vodscribe.speech.text_subtitles`); each is attached to the video as
    "<Language> (AI-translated)" when it succeeds."""
    sub = get_subtitle(session, video, subtitle_id)
    if sub is None:
        raise SubtitleError(f"The video has no subtitle {subtitle_id}.", 404)
    try:
        wanted = languages.parse_language_list(targets or "disable")
    except languages.UnknownLanguageError as exc:
        raise SubtitleError(f"Unprocessable Entity. {exc}.") from exc
    source = languages.resolve(sub.language)
    wanted = [t for t in dict.fromkeys(wanted) if t is not source]
    if not wanted:
        raise SubtitleError(
            'Unprocessable Entity. Give "auto_translate_subtitles_language": languages other than the '
            f"subtitle's own ({source.b})."
        )
    check_room(session, video, adding=len(wanted))
    tasks = []
    for target in wanted:
        data = TaskData(
            url=f"subtitle:{sub.id}",
            audio_language=source.b,
            subtitles_language=target.b,
            client_entity_data=json.dumps({"video_id": video.id}),
            source_subtitle_id=sub.id,
            vocabulary=video.vocabulary,
        )
        try:
            tasks.append(create_text_translation(session, settings, client, sub.vtt, data, video_id=video.id))
        except TaskError as exc:
            raise SubtitleError(exc.message, exc.status if exc.status != 400 else 422) from exc
    return tasks


def use_vocabulary(
    session: Session,
    client: Client,
    video: Video,
    terms: Sequence[TermItem] | None,
    vocabulary_id: int | None,
) -> None:
    """Make the given terms (and a saved vocabulary's) the video's vocabulary, which its AI tasks
    from now on use; nothing when neither is given."""
    if terms is None and vocabulary_id is None:
        return
    try:
        video.vocabulary = vocabularies.for_request(session, client, terms, vocabulary_id)
    except vocabularies.VocabularyError as exc:
        raise SubtitleError(f"Unprocessable Entity. {exc.message}") from exc


def has_ai_transcription(session: Session, video: Video, language: languages.Language | None) -> bool:
    """Whether the video has a subtitle an AI transcription (not a translation) made, in
    ``language`` if given: known by the task that made it, so a renamed or corrected one counts."""
    made = session.execute(
        select(Subtitle.language, AITask.task_data)
        .join(AITask, AITask.id == Subtitle.ai_task_id)
        .where(Subtitle.video_id == video.id)
    )
    return any(
        TaskData.model_validate(data).subtitles_language is None and (language is None or code == language.b)
        for code, data in made
    )


def _asr_rendition(session: Session, video: Video) -> Rendition:
    """The lowest complete rendition: its 64 kbit/s AAC track is what ASR needs (as on Gcore)."""
    rendition = session.scalars(
        select(Rendition)
        .where(Rendition.video_id == video.id, Rendition.status == RenditionStatus.COMPLETE)
        .order_by(Rendition.height)
    ).first()
    if rendition is None:
        raise SubtitleError("Unprocessable Entity. The video has no transcoded rendition yet.")
    return rendition


def attach_ai_result(
    session: Session, video_id: int, task_id: str, task_data: TaskData, result: TranscriptionResult
) -> bool:
    """Attach a succeeded AI task's subtitle to its video, if the video is ready; True if attached.

    A video still being processed gets it from its media job as it becomes ready
    (:func:`attach_finished`); one whose processing failed never does (the result stays the task's).
    The video's row is locked first, as the media job locks it to turn the video ready: of a task and
    a job ending at the same moment, the one that goes second sees what the other did, so the
    subtitle is attached exactly once."""
    status = session.scalar(select(Video.status).where(Video.id == video_id).with_for_update())
    video = session.get(Video, video_id)
    if status != VideoStatus.READY or video is None:
        return False
    return _add_ai_subtitle(session, video, task_id, task_data, result)


def attach_finished(session: Session, video: Video) -> int:
    """Attach the subtitles of the video's AI tasks that succeeded before it was ready (the caller
    holds the video's row lock and is turning it ready); returns how many were attached."""
    attached = exists().where(Subtitle.ai_task_id == AITask.id)
    waiting = session.scalars(
        select(AITask)
        .where(
            AITask.video_id == video.id,
            AITask.attach_subtitle.is_(True),
            AITask.status == TaskStatus.SUCCESS,
            ~attached,
        )
        .order_by(AITask.created_at, AITask.id)
    )
    return sum(
        _add_ai_subtitle(
            session,
            video,
            task.id,
            TaskData.model_validate(task.task_data),
            TranscriptionResult.model_validate(task.result or {}),
        )
        for task in list(waiting)
    )


def _add_ai_subtitle(
    session: Session, video: Video, task_id: str, task_data: TaskData, result: TranscriptionResult
) -> bool:
    named = ai_subtitle_name(task_data, result)
    if named is None:
        return False
    name, language = named
    same = select(Subtitle.id).where(
        Subtitle.video_id == video.id, Subtitle.language == language, Subtitle.vtt == result.vttContent
    )
    if session.scalars(same).first() is not None:
        # Asking again for the same AI subtitles gives the same text (the recognition is kept):
        # the video has it already, so the task's result is not attached twice.
        log.info("task %s: video %s already has this subtitle", task_id, video.id)
        return False
    try:
        check_room(session, video, text=result.vttContent)
    except SubtitleError as exc:  # the task keeps its result; the video has no room for another track
        log.warning("task %s: subtitle not attached to video %s: %s", task_id, video.id, exc.message)
        return False
    session.add(
        Subtitle(video_id=video.id, name=name, language=language, vtt=result.vttContent, ai_task_id=task_id)
    )
    session.flush()
    return True


def ai_subtitle_name(task_data: TaskData, result: TranscriptionResult) -> tuple[str, str] | None:
    """(name, ISO 639-2/B code) of the subtitle an AI task result becomes, or None (no speech)."""
    if not result.speech_detected:
        return None
    subtitles_language = task_data.subtitles
    if subtitles_language is not None:
        if result.languages == [subtitles_language.b]:
            return None  # all the speech was already in it: the transcription's track has it
        return f"{subtitles_language.name}{AI_TRANSLATED}", subtitles_language.b
    code = (result.languages or [task_data.audio_language or "eng"])[0]
    lang = languages.resolve(code)
    return f"{lang.name}{AI_GENERATED}", lang.b


# --- HLS --------------------------------------------------------------------------------------------
def publish(
    settings: Settings, session: Session, video: Video, *, changes: Callable[[Session], None] | None = None
) -> None:
    """Rewrite the subtitle playlists and ``master.m3u8`` from the database (no-op before packaging).

    The playlists are built in a scratch folder and stored together; the video's row is locked for the
    read-and-write so two machines publishing at once cannot store an older subtitle list last.
    ``changes`` runs under that lock first, and commits with it: the playlists show what it did by the
    time anyone can see it (the media job turns the video ready and attaches subtitles this way)."""
    store = media_store(settings)
    with store.locked(video.key):
        meta_text = store.read_text(video.key, HLS_META)
        if meta_text is None and changes is None:
            return
        session.execute(select(Video.id).where(Video.id == video.id).with_for_update())
        session.expire_all()
        if changes is not None:
            changes(session)
        if meta_text is not None:
            store.put_texts(video.key, _playlists(session, video, json.loads(meta_text)), prune="subs")
        session.commit()


def _playlists(session: Session, video: Video, meta: dict[str, Any]) -> dict[str, str]:
    """The master playlist and each subtitle's playlist and WebVTT file: relative name -> text."""
    variants = [HlsVariant(**v) for v in meta["variants"]]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tracks: list[tuple[SubtitleTrack, str]] = []
        for i, sub in enumerate(list_subtitles(session, video)):
            lang = languages.resolve(sub.language)
            track = SubtitleTrack(f"sub{sub.id}", sub.name, lang.iso1 or lang.b, default=i == 0)
            vtt = to_vtt(parse_subtitles(sub.vtt))
            duration, mpegts = meta["duration"], meta["mpegts"]
            tracks.append(
                (track, write_subtitle_playlist(folder, track, vtt, duration=duration, mpegts=mpegts))
            )
        write_master(folder, variants, tracks)
        return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}
