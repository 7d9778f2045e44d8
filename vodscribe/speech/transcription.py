"""The transcription pipeline for one local media file: probe -> decode -> detect speech ->
plan languages -> recognise -> segment into cues. Used by the worker and by the CLI."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from vodscribe import languages
from vodscribe.engines.base import Cue, SpeechSegment
from vodscribe.engines.whisper import EngineStopped, WhisperEngine
from vodscribe.errors import Cancelled
from vodscribe.languages import Language
from vodscribe.media.probe import MediaInfo, decode_audio, probe, require_audio
from vodscribe.speech.recognize import LanguageRun, Progress, plan_runs, rank_languages, transcribe_runs
from vodscribe.speech.recognized import Recognized
from vodscribe.speech.segment import build_cues
from vodscribe.speech.subtitle_translation import Translator, WhisperTranslation, require

#: Share of the progress bar each step takes (the rest is speech recognition).
DECODE_SHARE = 0.05
PLAN_SHARE = 0.10
#: Share of the rest that text translation takes, when a text backend is used.
TRANSLATE_SHARE = 0.3


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a transcription produced. Languages are Whisper codes, most spoken first."""

    media: MediaInfo
    segments: tuple[SpeechSegment, ...]
    cues: tuple[Cue, ...]
    languages: tuple[str, ...]
    translated_by: tuple[str, ...] = ()
    """Names of the translation backends used (empty when nothing was translated)."""
    recognized: Recognized | None = None
    """The speech as recognised, for reuse; None when Whisper translated some of it from the audio."""

    @property
    def speech_detected(self) -> bool:
        return bool(self.cues)


def transcribe_file(
    path: Path,
    engine: WhisperEngine,
    *,
    language: str | None = None,
    target: Language | None = None,
    translators: Sequence[Translator] = (WhisperTranslation(),),
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
    reuse: Recognized | None = None,
) -> Transcript:
    """Transcribe ``path``; ``language`` (Whisper code) skips detection. Progress is 0.0-1.0.

    With ``target``, speech in any other language is translated into it by the first of
    ``translators`` that supports the pair (each language run of a code-switching file on its own;
    speech already in ``target`` is kept as spoken). :class:`UnsupportedTranslation` is raised as
    soon as a run's language has no backend, before any recognition work is spent on it.

    ``reuse`` is an earlier recognition of the same file: the speech is then not recognised again,
    only translated (unless a run needs Whisper's own translation, which works on the audio).
    """

    def report(fraction: float) -> None:
        if on_progress is not None:
            on_progress(fraction)

    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled

    info = probe(path)
    require_audio(info)
    if reuse is not None:
        backends = {run: _backend(run, target, translators) for run, _ in reuse.runs}
        if not any(b is not None and b.from_speech for b in backends.values()):
            return _from_recognized(info, reuse, backends, target, language, report, should_stop)
    audio = decode_audio(path, info, max_seconds=max_seconds, should_stop=should_stop)
    report(DECODE_SHARE)
    check()
    spans = engine.speech_spans(audio)
    try:
        runs = plan_runs(engine, audio, spans, language=language, should_stop=should_stop)
        report(DECODE_SHARE + PLAN_SHARE)
        backends = {run: _backend(run, target, translators) for run in runs}
        by_text = [run for run in runs if (b := backends[run]) is not None and not b.from_speech]
        progress = _RunProgress(report, runs, by_text)
        segments: list[SpeechSegment] = []
        spoken: list[tuple[LanguageRun, tuple[SpeechSegment, ...]]] = []
        for run, run_segments in transcribe_runs(
            engine,
            audio,
            runs,
            to_english=lambda run: (b := backends[run]) is not None and b.from_speech,
            on_progress=progress.asr,
            should_stop=should_stop,
        ):
            backend = backends[run]
            spoken.append((run, tuple(run_segments)))
            if run in by_text and backend is not None and target is not None:
                run_segments = backend.translate(
                    run_segments,
                    languages.from_whisper(run.language),
                    target,
                    on_progress=partial(progress.translation, run),
                    should_stop=should_stop,
                )
            segments += run_segments
    except EngineStopped as exc:
        raise Cancelled from exc
    from_speech = any(b is not None and b.from_speech for b in backends.values())
    recognized = None if from_speech else Recognized(tuple(spoken))
    return _finish(info, segments, runs, backends, language, recognized, report)


def _from_recognized(
    info: MediaInfo,
    recognized: Recognized,
    backends: dict[LanguageRun, Translator | None],
    target: Language | None,
    language: str | None,
    report: Callable[[float], None],
    should_stop: Callable[[], bool] | None,
) -> Transcript:
    """The subtitles of an earlier recognition: only the runs in another language are translated."""
    runs = [run for run, _ in recognized.runs]
    by_text = [run for run in runs if backends[run] is not None]
    progress = _RunProgress(report, runs, by_text)
    progress.asr(Progress(progress.asr_total, progress.asr_total))  # nothing left to recognise
    segments: list[SpeechSegment] = []
    for run, spoken in recognized.runs:
        backend = backends[run]
        if backend is not None and target is not None:
            translated = backend.translate(
                list(spoken),
                languages.from_whisper(run.language),
                target,
                on_progress=partial(progress.translation, run),
                should_stop=should_stop,
            )
            segments += translated
        else:
            segments += spoken
    return _finish(info, segments, runs, backends, language, recognized, report)


def _finish(
    info: MediaInfo,
    segments: list[SpeechSegment],
    runs: Sequence[LanguageRun],
    backends: dict[LanguageRun, Translator | None],
    language: str | None,
    recognized: Recognized | None,
    report: Callable[[float], None],
) -> Transcript:
    # Whisper's audio clock starts at the first audio sample; players use the container clock.
    if info.audio_start:
        segments = [_shift(s, info.audio_start) for s in segments]
    cues = tuple(build_cues(segments))
    languages_ = tuple(rank_languages(runs)) if cues else ((language,) if language else ())
    used = tuple(dict.fromkeys(b.name for b in backends.values() if b is not None))
    report(1.0)
    return Transcript(
        media=info,
        segments=tuple(segments),
        cues=cues,
        languages=languages_,
        translated_by=used,
        recognized=recognized,
    )


class _RunProgress:
    """One progress figure over recognition and text translation, run by run.

    After decoding and planning, recognition takes the rest of the bar, or ``1 - TRANSLATE_SHARE``
    of it when some runs are translated as text; each part advances by seconds of speech done.
    """

    def __init__(
        self, report: Callable[[float], None], runs: Sequence[LanguageRun], by_text: Sequence[LanguageRun]
    ) -> None:
        self.report = report
        self.asr_total = sum(run.speech_seconds for run in runs) or 1.0
        self.mt_total = sum(run.speech_seconds for run in by_text) or 1.0
        self.mt_weight = TRANSLATE_SHARE if by_text else 0.0
        self.asr_done = 0.0
        self.mt_done: dict[LanguageRun, float] = {}

    def asr(self, p: Progress) -> None:
        self.asr_done = p.done
        self._emit()

    def translation(self, run: LanguageRun, fraction: float) -> None:
        self.mt_done[run] = run.speech_seconds * fraction
        self._emit()

    def _emit(self) -> None:
        done = (1 - self.mt_weight) * min(1.0, self.asr_done / self.asr_total)
        done += self.mt_weight * min(1.0, sum(self.mt_done.values()) / self.mt_total)
        self.report(DECODE_SHARE + PLAN_SHARE + (1 - DECODE_SHARE - PLAN_SHARE) * done)


def _backend(
    run: LanguageRun, target: Language | None, translators: Sequence[Translator]
) -> Translator | None:
    """The backend that translates ``run`` into ``target``; None when no translation is needed."""
    if target is None:
        return None
    source = languages.from_whisper(run.language)
    if source is target:
        return None
    return require(translators, source, target)


def _shift(seg: SpeechSegment, by: float) -> SpeechSegment:
    words = tuple(replace(w, start=w.start + by, end=w.end + by) for w in seg.words)
    return replace(seg, start=seg.start + by, end=seg.end + by, words=words)
