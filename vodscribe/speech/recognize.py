"""Speech recognition stage: speech detection, language planning (code-switching) and transcription.

Language is decided over the whole file, not its first 30 s:

1. Silero VAD finds the speech spans.
2. Spans are grouped into windows of up to 30 s of speech and each window gets a language-ID pass.
   A window whose best language is not clearly ahead (a switch inside it, or a short, unsure window)
   is split back into its spans, and each span is identified on its own.
3. Consecutive spans of one language form a *run*; each run is transcribed with its language.

Whisper's own ``multilingual=True`` mode was measured to drop languages in mixed clips, whereas one
language per VAD chunk kept them all (see docs/design.md, "Code-switching"), hence this plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from vodscribe.engines.base import SpeechSegment
from vodscribe.engines.whisper import (
    SAMPLE_RATE,
    EngineStopped,
    Span,
    Task,
    WhisperEngine,
    merge_spans,
    slice_audio,
)

#: A window whose best language has at least this probability is taken as one language.
CONFIDENT = 0.80
#: Spans shorter than this are too short to identify alone; they inherit their neighbours' language.
MIN_ID_SECONDS = 1.5
#: Seconds of audio kept around speech for language identification.
CONTEXT = 1.0


@dataclass(frozen=True, slots=True)
class LanguageRun:
    """A stretch of audio spoken in one language (Whisper code)."""

    span: Span
    language: str
    speech_seconds: float
    spans: tuple[Span, ...] = ()
    """The speech inside ``span`` (VAD's spans); empty when unknown (all of ``span`` is decoded)."""


def plan_runs(
    engine: WhisperEngine,
    audio: np.ndarray,
    spans: Sequence[Span],
    *,
    language: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[LanguageRun]:
    """Assign a language to every speech span and merge neighbours of the same language."""
    if not spans:
        return []
    if language is not None:
        labelled: list[tuple[Span, str | None]] = [(s, language) for s in spans]
    else:
        labelled = _identify(engine, audio, spans, should_stop)
    return _merge_runs(labelled)


def _identify(
    engine: WhisperEngine,
    audio: np.ndarray,
    spans: Sequence[Span],
    should_stop: Callable[[], bool] | None,
) -> list[tuple[Span, str | None]]:
    labelled: list[tuple[Span, str | None]] = []
    for window in merge_spans(spans):
        if should_stop is not None and should_stop():
            raise EngineStopped
        best, p = engine.detect_language(_view(audio, window))[0]
        if p >= CONFIDENT or len(window) == 1:
            labelled.extend((s, best) for s in window)
            continue
        for span in window:  # a switch inside the window, or unsure: decide span by span
            if span.duration < MIN_ID_SECONDS:
                labelled.append((span, None))
            else:
                labelled.append((span, engine.detect_language(_view(audio, [span]))[0][0]))
    return _fill_unknown(labelled)


def _view(audio: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """The audio a language-ID pass looks at: the stretch around ``spans`` with its natural pauses
    and a little context. Speech cut to the VAD edges loses word onsets and was measured to mislead
    Whisper (a Spanish clip: es 0.40 with context, Greek 0.23 without). When the stretch is longer
    than Whisper's 30 s window, the spans are joined, each with its context."""
    total = len(audio) / SAMPLE_RATE
    padded = [Span(max(0.0, s.start - CONTEXT), min(total, s.end + CONTEXT)) for s in spans]
    region = Span(padded[0].start, padded[-1].end)
    if region.duration <= 30.0:
        return slice_audio(audio, region)
    return _concat(audio, padded)


def _fill_unknown(labelled: list[tuple[Span, str | None]]) -> list[tuple[Span, str | None]]:
    """Short spans take the language of the previous span (or the next one at the start)."""
    known = [lang for _, lang in labelled if lang is not None]
    fallback = Counter(known).most_common(1)[0][0] if known else "en"
    out: list[tuple[Span, str | None]] = []
    previous: str | None = None
    for i, (span, lang) in enumerate(labelled):
        if lang is None:
            following = next((ln for _, ln in labelled[i + 1 :] if ln is not None), None)
            lang = previous or following or fallback
        out.append((span, lang))
        previous = lang
    return out


def _merge_runs(labelled: Sequence[tuple[Span, str | None]]) -> list[LanguageRun]:
    runs: list[LanguageRun] = []
    for span, lang in labelled:
        assert lang is not None
        if runs and runs[-1].language == lang:
            last = runs[-1]
            whole = Span(last.span.start, span.end)
            runs[-1] = LanguageRun(whole, lang, last.speech_seconds + span.duration, (*last.spans, span))
        else:
            runs.append(LanguageRun(span, lang, span.duration, (span,)))
    return runs


def _concat(audio: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    return np.concatenate([slice_audio(audio, s) for s in spans])


def transcribe_runs(
    engine: WhisperEngine,
    audio: np.ndarray,
    runs: Sequence[LanguageRun],
    *,
    to_english: Callable[[LanguageRun], bool] | None = None,
    offset: float = 0.0,
    on_segment: Callable[[LanguageRun, SpeechSegment], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[tuple[LanguageRun, list[SpeechSegment]]]:
    """Lazily transcribe each run in its language, or translate it to English where ``to_english``
    says so (Whisper's ``translate`` task); yields each run with its segments, whose times are
    ``offset`` plus seconds into ``audio``."""
    for run in runs:
        task: Task = "translate" if to_english is not None and to_english(run) else "transcribe"
        # Only the VAD spans are decoded (they already carry VAD's 200 ms padding): no second VAD.
        span = run.span
        inside = [Span(s.start - span.start, s.end - span.start) for s in run.spans] or None
        segments: list[SpeechSegment] = []
        for seg in engine.transcribe(
            slice_audio(audio, span),
            language=run.language,
            task=task,
            offset=offset + span.start,
            spans=inside,
            should_stop=should_stop,
        ):
            if on_segment is not None:
                on_segment(run, seg)
            segments.append(seg)
        yield run, segments


def identify_start(
    engine: WhisperEngine, audio: np.ndarray, spans: Sequence[Span]
) -> tuple[str, float, float]:
    """The language of the first ≤30 s of speech in ``spans`` (seen with its pauses and context,
    as :func:`plan_runs` sees it): the language, its probability and where that speech ends."""
    first = merge_spans(spans)[0]
    best, p = engine.detect_language(_view(audio, first))[0]
    return best, p, first[-1].end


def transcribe_assuming(
    engine: WhisperEngine,
    audio: np.ndarray,
    spans: Sequence[Span],
    language: str,
    *,
    checked_from: float = 0.0,
    task: Task = "transcribe",
    offset: float = 0.0,
    on_segment: Callable[[LanguageRun, SpeechSegment], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[LanguageRun | None, list[SpeechSegment], list[Span]]:
    """Transcribe ``spans`` as one run in ``language``, checking it as Whisper goes.

    Each 30 s window Whisper encodes is language-identified from that encoding (no extra encoder
    pass, unlike :func:`plan_runs`); the first window after ``checked_from`` that does not confirm
    ``language`` (best language, at least :data:`CONFIDENT`) stops the run there. Returns the run
    that held (None if nothing did), its segments, and the spans from the stop on, which need a
    plan of their own (empty when the language held throughout). A segment is never half kept: the
    stop moves back to the start of the span where the first segment not kept begins.
    """
    run = run_of(spans, language)
    latest: list[tuple[str, float]] = []

    def seen(probabilities: list[tuple[str, float]]) -> None:
        latest[:] = probabilities

    segments: list[SpeechSegment] = []
    stopped_at: float | None = None
    inside = [Span(s.start - run.span.start, s.end - run.span.start) for s in spans]
    decoding = engine.transcribe(
        slice_audio(audio, run.span),
        language=language,
        task=task,
        offset=offset + run.span.start,
        spans=inside,
        should_stop=should_stop,
        on_window=seen,
    )
    try:
        for seg in decoding:
            if seg.end - offset > checked_from and not _confirms(latest, language):
                stopped_at = seg.start - offset
                break
            if on_segment is not None:
                on_segment(run, seg)
            segments.append(seg)
    finally:
        decoding.close()
    if stopped_at is None:
        return run, segments, []
    cut = _span_start(spans, stopped_at)
    while True:  # move the cut back until no kept segment reaches past it
        kept = [seg for seg in segments if seg.end - offset <= cut + 1e-3]
        dropped = [seg.start - offset for seg in segments[len(kept) :]]
        earlier = _span_start(spans, min(dropped)) if dropped else cut
        if earlier >= cut:
            break
        cut = earlier
    before = [s for s in spans if s.start < cut]
    rest = [s for s in spans if s.start >= cut]
    return (run_of(before, language) if before else None), kept, rest


def _confirms(probabilities: Sequence[tuple[str, float]], language: str) -> bool:
    return bool(probabilities) and probabilities[0][0] == language and probabilities[0][1] >= CONFIDENT


def _span_start(spans: Sequence[Span], at: float) -> float:
    """The start of the first span not over by ``at``: the one holding it, or, when ``at`` falls
    in a pause (mapped times can), the next one; past the end, the last one (never nothing to redo)."""
    return next((s.start for s in spans if s.end > at), spans[-1].start)


def run_of(spans: Sequence[Span], language: str) -> LanguageRun:
    """All of ``spans`` as one run in ``language``."""
    return LanguageRun(
        Span(spans[0].start, spans[-1].end), language, sum(s.duration for s in spans), tuple(spans)
    )


def rank_languages(runs: Sequence[LanguageRun], limit: int = 5) -> list[str]:
    """Languages by seconds of speech, most spoken first (Gcore shows at most 5)."""
    seconds: dict[str, float] = {}
    for run in runs:
        seconds[run.language] = seconds.get(run.language, 0.0) + run.speech_seconds
    ranked = sorted(seconds, key=lambda lang: -seconds[lang])  # stable: ties keep first-spoken order
    return ranked[:limit]
