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
) -> Transcript:
    """Transcribe ``path``; ``language`` (Whisper code) skips detection. Progress is 0.0-1.0.

    With ``target``, speech in any other language is translated into it by the first of
    ``translators`` that supports the pair (each language run of a code-switching file on its own;
    speech already in ``target`` is kept as spoken). :class:`UnsupportedTranslation` is raised as
    soon as a run's language has no backend, before any recognition work is spent on it.
    """

    def report(fraction: float) -> None:
        if on_progress is not None:
            on_progress(fraction)

    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled

    info = probe(path)
    require_audio(info)
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
        for run, run_segments in transcribe_runs(
            engine,
            audio,
            runs,
            to_english=lambda run: (b := backends[run]) is not None and b.from_speech,
            on_progress=progress.asr,
            should_stop=should_stop,
        ):
            backend = backends[run]
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
    # Whisper's audio clock starts at the first audio sample; players use the container clock.
    if info.audio_start:
        segments = [_shift(s, info.audio_start) for s in segments]
    cues = tuple(build_cues(segments))
    languages_ = tuple(rank_languages(runs)) if cues else ((language,) if language else ())
    used = tuple(dict.fromkeys(b.name for b in backends.values() if b is not None))
    report(1.0)
    return Transcript(
        media=info, segments=tuple(segments), cues=cues, languages=languages_, translated_by=used
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
