"""The transcription pipeline for one local media file: probe -> decode -> detect speech ->
plan languages -> recognise -> segment into cues. Used by the worker and by the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from vodscribe.engines.base import Cue, SpeechSegment
from vodscribe.engines.whisper import EngineStopped, WhisperEngine
from vodscribe.pipeline.errors import Cancelled
from vodscribe.pipeline.probe import MediaInfo, decode_audio, probe, require_audio
from vodscribe.pipeline.recognize import Progress, plan_runs, rank_languages, transcribe_runs
from vodscribe.pipeline.segment import build_cues

#: Share of the progress bar each step takes (the rest is speech recognition).
DECODE_SHARE = 0.05
PLAN_SHARE = 0.10


@dataclass(frozen=True, slots=True)
class Transcript:
    """What a transcription produced. Languages are Whisper codes, most spoken first."""

    media: MediaInfo
    segments: tuple[SpeechSegment, ...]
    cues: tuple[Cue, ...]
    languages: tuple[str, ...]

    @property
    def speech_detected(self) -> bool:
        return bool(self.cues)


def transcribe_file(
    path: Path,
    engine: WhisperEngine,
    *,
    language: str | None = None,
    translate_to_english: bool = False,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Transcript:
    """Transcribe ``path``; ``language`` (Whisper code) skips detection. Progress is 0.0-1.0."""

    def report(fraction: float) -> None:
        if on_progress is not None:
            on_progress(fraction)

    def check() -> None:
        if should_stop is not None and should_stop():
            raise Cancelled

    info = probe(path)
    require_audio(info)
    audio = decode_audio(path, info, should_stop=should_stop)
    report(DECODE_SHARE)
    check()
    spans = engine.speech_spans(audio)
    try:
        runs = plan_runs(engine, audio, spans, language=language, should_stop=should_stop)
        report(DECODE_SHARE + PLAN_SHARE)

        def asr_progress(p: Progress) -> None:
            report(DECODE_SHARE + PLAN_SHARE + (1 - DECODE_SHARE - PLAN_SHARE) * p.fraction)

        segments = tuple(
            transcribe_runs(
                engine,
                audio,
                runs,
                translate_to_english=translate_to_english,
                on_progress=asr_progress,
                should_stop=should_stop,
            )
        )
    except EngineStopped as exc:
        raise Cancelled from exc
    # Whisper's audio clock starts at the first audio sample; players use the container clock.
    if info.audio_start:
        segments = tuple(_shift(s, info.audio_start) for s in segments)
    cues = tuple(build_cues(segments))
    languages = tuple(rank_languages(runs)) if cues else ((language,) if language else ())
    report(1.0)
    return Transcript(media=info, segments=segments, cues=cues, languages=languages)


def _shift(seg: SpeechSegment, by: float) -> SpeechSegment:
    words = tuple(replace(w, start=w.start + by, end=w.end + by) for w in seg.words)
    return replace(seg, start=seg.start + by, end=seg.end + by, words=words)
