"""Speech recognition stage: speech detection, language planning (code-switching) and transcription.

Language is decided over the whole file, not its first 30 s:

1. Silero VAD finds the speech spans (a pause of 0.3 s splits them).
2. The speech is taken to go on in the language found so far (:func:`transcribe_assuming`) while
   Whisper's own encoding of each window it transcribes confirms it, as a whole and span by span
   (the encoder output cut to each span).
3. From where it does not, spans are grouped into windows of up to 30 s of speech, each with a
   language-ID pass (:func:`plan_runs`); a span that disagrees with its window, or every span of an
   unsure window, is identified on its own, never hearing a neighbour's speech. A span still unsure
   is decided by rule (a language of the file, else the one Whisper heard most), never by the last
   digits of a probability, which differ between CPUs.
4. Consecutive spans of one language form a *run*; each run is transcribed with its language.

Whisper's own ``multilingual=True`` mode was measured to drop languages in mixed clips, whereas one
language per VAD chunk kept them all (see docs/design.md, "Code-switching"), hence this plan.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from vodscribe.engines.results import SpeechSegment
from vodscribe.engines.whisper import (
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    EngineStopped,
    Probabilities,
    Span,
    Task,
    WhisperEngine,
    WindowLanguages,
    best,
    merge_spans,
    slice_audio,
)

#: A window whose best language has at least this probability is taken as one language.
CONFIDENT = 0.80
#: A span whose best language leads the runner-up by less than this (and is under CONFIDENT) is
#: unsure: measured on whisper-base, a Spanish test clip read es 0.40 / el 0.22 with AVX-512 and
#: el 0.37 / es 0.32 with AVX2, while every clip it identified correctly led by at least 0.5.
UNSURE_MARGIN = 0.25
#: A span whose slice of a window gives the window's language less than this (and prefers another)
#: may be in another language: it is identified on its own. Measured on the switch clips of the
#: test data: the language before a switch got at most 0.16 in the slice after it.
FOREIGN = 0.30
#: An unsure span chooses among the languages with at least this share of its best one's probability.
CANDIDATE_SHARE = 0.3
#: Speech shorter than this (a word or two) is identified alone only when language ID is confident;
#: otherwise it takes the language of the speech across the shorter pause. A 0.6 s "un" ending a
#: French sentence read en 0.65 alone.
SHORT_SECONDS = 1.0
#: Seconds of audio kept around speech for language identification (less where another span is nearer).
CONTEXT = 1.0
#: The pause between the two views of a span that language ID hears twice.
REPEAT_PAUSE = 0.5


@dataclass(frozen=True, slots=True)
class LanguageRun:
    """A stretch of audio spoken in one language (Whisper code)."""

    span: Span
    language: str
    speech_seconds: float
    spans: tuple[Span, ...] = ()
    """The speech inside ``span`` (VAD's spans); empty when unknown (all of ``span`` is decoded)."""
    confidence: float = 1.0
    """How sure language ID was of ``language`` (its probability, speech-weighted over the run's
    spans); 1.0 where the language was given rather than identified."""


def plan_runs(
    engine: WhisperEngine,
    audio: np.ndarray,
    spans: Sequence[Span],
    *,
    language: str | None = None,
    known: Sequence[str] = (),
    speech: Sequence[Span] = (),
    should_stop: Callable[[], bool] | None = None,
    start: StartLanguage | None = None,
) -> list[LanguageRun]:
    """Assign a language to every speech span and merge neighbours of the same language.

    ``known`` are languages already found in the file (or expected by the client): a span whose
    language stays unsure after all the evidence takes one of them if it is among its candidates.
    ``speech`` is all the speech in ``audio`` when ``spans`` are only part of it: language ID never
    hears the speech around ``spans`` either. ``start``: what :func:`identify_start` heard of the
    first window, reused where that window is planned."""
    if not spans:
        return []
    if language is not None:
        return _merge_runs([(s, language, 1.0) for s in spans])
    return _merge_runs(_identify(engine, audio, spans, known, speech or spans, should_stop, start))


def _identify(
    engine: WhisperEngine,
    audio: np.ndarray,
    spans: Sequence[Span],
    known: Sequence[str],
    speech: Sequence[Span],
    should_stop: Callable[[], bool] | None,
    start: StartLanguage | None = None,
) -> list[tuple[Span, str, float]]:
    """Each span's language and confidence.

    Each window of ≤30 s of speech is encoded once; its language ID, and that of each span's slice
    of the encoding, settle the spans that agree with a confident window. A span that may be in
    another language (its slice says so), or every span of an unsure window, is identified on its
    own (:func:`_identify_alone`), never hearing a neighbour's speech, so a switch at a pause is
    seen from the first word after it."""
    padded = dict(zip(speech, _padded(speech, len(audio) / SAMPLE_RATE), strict=True))
    evidence: dict[Span, Probabilities] = {}
    decided: dict[Span, tuple[str, float]] = {}
    for window in merge_spans(spans):
        if should_stop is not None and should_stop():
            raise EngineStopped
        view, inside = _view_of(audio, [padded[s] for s in window], window)
        if start is not None and start.heard is not None and tuple(window) == start.window:
            found = start.heard  # this very view, already encoded and identified
        else:
            found = engine.identify_spans(view, inside)
        top, p = best(found.window)
        at = dict(zip(inside, window, strict=True))
        foreign = {at[pos] for pos, probs in found.spans if _foreign(probs, top, pos.duration)}
        for span in window:
            # Near a switch, a word or two is identified too (it may be the first of the new language).
            near_switch = bool(foreign) and span.duration < SHORT_SECONDS
            if p >= CONFIDENT and span not in foreign and not near_switch:
                decided[span] = (top, p)
            else:  # a window of one span has just been heard as the span alone would be
                heard = found.window if len(window) == 1 else None
                evidence[span] = _identify_alone(engine, audio, padded[span], heard)
    sure = {span: best(probs) for span, probs in evidence.items() if _sure(probs, span.duration)}
    decided.update(sure)
    found_languages = [*known, *(lang for lang, _ in decided.values())]
    labelled: list[tuple[Span, str, float]] = []
    for i, span in enumerate(spans):
        if span in decided:
            labelled.append((span, *decided[span]))
            continue
        probs = evidence[span]
        neighbours = _nearest_first(spans, i, decided)
        if span.duration < SHORT_SECONDS and neighbours:
            labelled.append((span, *neighbours[0]))  # a word or two: as the speech nearest to it
            continue
        language = _prefer(engine, probs, [lang for lang, _ in neighbours] + found_languages)
        labelled.append((span, language, probs.get(language, 0.0)))
    return labelled


def _nearest_first(
    spans: Sequence[Span], i: int, decided: dict[Span, tuple[str, float]]
) -> list[tuple[str, float]]:
    """The decided spans either side of ``spans[i]`` (language, confidence), the one across the
    shorter pause first."""
    span = spans[i]
    sides = []
    if i and spans[i - 1] in decided:
        sides.append((span.start - spans[i - 1].end, decided[spans[i - 1]]))
    if i + 1 < len(spans) and spans[i + 1] in decided:
        sides.append((spans[i + 1].start - span.end, decided[spans[i + 1]]))
    return [side for _, side in sorted(sides)]


def _sure(probabilities: Probabilities, seconds: float) -> bool:
    """Language ID settles it: confident, or (for more than a word or two) well ahead."""
    ranked = sorted(probabilities.values(), reverse=True)
    if ranked[0] >= CONFIDENT:
        return True
    runner_up = ranked[1] if len(ranked) > 1 else 0.0
    return seconds >= SHORT_SECONDS and ranked[0] - runner_up >= UNSURE_MARGIN


def _prefer(engine: WhisperEngine, probabilities: Probabilities, found: Sequence[str]) -> str:
    """The language of an unsure span: among its candidates (those close to its best), the first
    of ``found`` (its neighbours', then the file's), else the one Whisper heard most in training.
    A rule, not the last digits of a probability, so it decides alike on every CPU."""
    _, top = best(probabilities)
    candidates = [lang for lang, p in probabilities.items() if p >= CANDIDATE_SHARE * top]
    for language in found:
        if language in candidates:
            return language
    return min(candidates, key=engine.language_rank)


def _foreign(probabilities: Probabilities, language: str, seconds: float) -> bool:
    """A span's slice that may not be in ``language``. A word or two gives a weak slice (a French
    "un" read br 0.21), so a short span counts only when its slice is confident of another language
    (1 s of Chinese after German read zh 0.999)."""
    other, p = best(probabilities)
    if probabilities.get(language, 0.0) >= FOREIGN or other == language:
        return False
    return seconds >= SHORT_SECONDS or p >= CONFIDENT


def _padded(spans: Sequence[Span], total: float) -> list[Span]:
    """Each span with up to :data:`CONTEXT` of audio either side, but never past the middle of the
    pause to a neighbour: language ID hears a span's own pauses, not the next speaker's words."""
    out = []
    for i, span in enumerate(spans):
        before = spans[i - 1].end if i else 0.0
        after = spans[i + 1].start if i + 1 < len(spans) else total
        start = max(span.start - CONTEXT, (before + span.start) / 2 if i else 0.0)
        end = min(span.end + CONTEXT, (span.end + after) / 2 if i + 1 < len(spans) else total)
        out.append(Span(max(0.0, start), min(total, end)))
    return out


def _view_of(
    audio: np.ndarray, padded: Sequence[Span], spans: Sequence[Span]
) -> tuple[np.ndarray, list[Span]]:
    """The audio a language-ID pass looks at, and where each of ``spans`` is in it: the stretch
    around the spans with its natural pauses and a little context. Speech cut to the VAD edges loses
    word onsets and was measured to mislead Whisper (a Spanish clip: es 0.40 with context, Greek
    0.23 without). When the stretch is longer than Whisper's 30 s window, the padded spans are
    joined end to end."""
    region = Span(padded[0].start, padded[-1].end)
    if region.duration <= 30.0:
        return slice_audio(audio, region), [Span(s.start - region.start, s.end - region.start) for s in spans]
    inside, at = [], 0.0
    for pad, span in zip(padded, spans, strict=True):
        inside.append(Span(at + span.start - pad.start, at + span.end - pad.start))
        at += pad.duration
    return _concat(audio, padded), inside


def _identify_alone(
    engine: WhisperEngine, audio: np.ndarray, padded: Span, heard: Probabilities | None = None
) -> Probabilities:
    """One span's language from its own audio (``heard``, when that was already identified); when
    that is unsure, averaged with a second view, the same audio heard twice (more of the same
    speech in Whisper's 30 s window)."""
    once = slice_audio(audio, padded)
    probabilities = heard if heard is not None else engine.identify([once])
    if _sure(probabilities, padded.duration) or 2 * padded.duration + REPEAT_PAUSE > 30.0:
        return probabilities
    pause = np.zeros(int(REPEAT_PAUSE * SAMPLE_RATE), dtype=audio.dtype)
    twice = engine.identify([np.concatenate([once, pause, once])])
    return {
        lang: (probabilities.get(lang, 0.0) + twice.get(lang, 0.0)) / 2 for lang in {*probabilities, *twice}
    }


def _merge_runs(labelled: Sequence[tuple[Span, str, float]]) -> list[LanguageRun]:
    runs: list[LanguageRun] = []
    for span, lang, confidence in labelled:
        if runs and runs[-1].language == lang:
            last = runs[-1]
            seconds = last.speech_seconds + span.duration
            weighted = (last.confidence * last.speech_seconds + confidence * span.duration) / seconds
            runs[-1] = LanguageRun(
                Span(last.span.start, span.end), lang, seconds, (*last.spans, span), weighted
            )
        else:
            runs.append(LanguageRun(span, lang, span.duration, (span,), confidence))
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
        clip, inside = _clip_of(audio, run.span, run.spans)
        segments: list[SpeechSegment] = []
        for seg in engine.transcribe(
            clip,
            language=run.language,
            task=task,
            offset=offset + run.span.start,
            spans=inside or None,
            should_stop=should_stop,
        ):
            if on_segment is not None:
                on_segment(run, seg)
            segments.append(seg)
        yield run, segments


@dataclass(frozen=True, slots=True)
class StartLanguage:
    """The language of the first ≤30 s of speech (:func:`identify_start`)."""

    language: str
    probability: float
    window: tuple[Span, ...]
    """The speech spans it heard."""
    heard: WindowLanguages | None = None
    """Their language ID, span by span too, for :func:`plan_runs` to reuse when it plans from the
    start (an unsure start); None where the view is longer than Whisper's window."""

    @property
    def end(self) -> float:
        """Where the speech it heard ends."""
        return self.window[-1].end


def identify_speech(engine: WhisperEngine, audio: np.ndarray, spans: Sequence[Span]) -> StartLanguage | None:
    """The language of all of ``spans`` where their speech fits one Whisper window (a short clip),
    from the encoding that decoding them as one run then reuses (:meth:`WhisperEngine.prime`): one
    encoder pass for both, where language ID of the view (:func:`identify_start`) and decoding
    cost two. None for longer speech."""
    clip, inside = _clip_of(audio, Span(spans[0].start, spans[-1].end), spans)
    heard = engine.prime(clip, inside)
    if heard is None:
        return None
    language, p = best(heard.window)
    return StartLanguage(language, p, tuple(spans))


def _clip_of(audio: np.ndarray, span: Span, spans: Sequence[Span]) -> tuple[np.ndarray, list[Span]]:
    """What a run over ``span`` decodes: its audio, and its speech ``spans`` in seconds into it (the
    one computation, so that a run decodes exactly what :func:`identify_speech` encoded)."""
    return slice_audio(audio, span), [Span(s.start - span.start, s.end - span.start) for s in spans]


def identify_start(engine: WhisperEngine, audio: np.ndarray, spans: Sequence[Span]) -> StartLanguage:
    """The language of the first ≤30 s of speech in ``spans``, seen with its pauses and context, as
    :func:`plan_runs` sees it. Where that view fits Whisper's window (a short clip), the spans'
    slices of the same encoding are identified too, so that an unsure start is planned without
    encoding the same view again."""
    first = tuple(merge_spans(spans)[0])
    view, inside = _view_of(audio, _padded(spans, len(audio) / SAMPLE_RATE)[: len(first)], first)
    if len(view) > WINDOW_SAMPLES:  # faster-whisper's own cut of a longer view, as before
        language, p = engine.detect_language(view)[0]
        return StartLanguage(language, p, first)
    heard = engine.identify_spans(view, inside)
    language, p = best(heard.window)
    return StartLanguage(language, p, first, heard)


def transcribe_assuming(
    engine: WhisperEngine,
    audio: np.ndarray,
    spans: Sequence[Span],
    language: str,
    *,
    checked_from: float = 0.0,
    confidence: float = 1.0,
    task: Task = "transcribe",
    offset: float = 0.0,
    on_segment: Callable[[LanguageRun, SpeechSegment], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    cleared: Collection[Span] = (),
) -> Assumed:
    """Transcribe ``spans`` as one run in ``language``, checking it as Whisper goes.

    Each 30 s window Whisper encodes is language-identified from that encoding (no extra encoder
    pass, unlike :func:`plan_runs`), and so is each span's slice of it. The run stops at the first
    span whose slice may be in another language, or at the first window after ``checked_from``
    that does not confirm ``language`` (best language, at least :data:`CONFIDENT`). Returns the run
    that held (None if nothing did), its segments, and the spans from the stop on, which need a
    plan of their own (empty when the language held throughout). A segment is never half kept: the
    stop moves back to the start of the span where the first segment not kept begins.

    ``confidence`` is how sure the language ID that chose ``language`` was; the run reports its
    mean with that of every window that confirmed it. ``cleared`` are spans already heard on their
    own in ``language`` (:func:`holds_alone`): their slices stop nothing.
    """
    run = run_of(spans, language)
    latest: list[tuple[str, float]] = []
    switch: list[float] = []  # where a span that may be in another language starts (seconds into audio)
    suspect: list[Span] = []  # and that span itself

    heard = [confidence]  # and the probability of ``language`` in each window that confirmed it

    def seen(window: WindowLanguages) -> None:
        latest[:] = sorted(window.window.items(), key=lambda item: -item[1])
        if _confirms(latest, language):
            heard.append(latest[0][1])
        doubted = (
            _span_holding(spans, s.start + run.span.start)
            for s, probs in window.spans
            if _foreign(probs, language, s.duration)
        )
        foreign = [span for span in doubted if span not in cleared]
        if foreign and not switch:
            first = min(foreign, key=lambda span: span.start)
            switch.append(_with_words_before(spans, first.start))
            suspect.append(first)

    segments: list[SpeechSegment] = []
    stopped_at: float | None = None
    clip, inside = _clip_of(audio, run.span, spans)  # as identify_speech encoded it
    decoding = engine.transcribe(
        clip,
        language=language,
        task=task,
        offset=offset + run.span.start,
        spans=inside,
        should_stop=should_stop,
        on_window=seen,
    )
    try:
        for seg in decoding:
            start, end = seg.start - offset, seg.end - offset
            if switch and end > switch[0] + 1e-3:
                stopped_at = min(start, switch[0])
                break
            if end > checked_from and not _confirms(latest, language):
                stopped_at = start
                break
            if on_segment is not None:
                on_segment(run, seg)
            segments.append(seg)
    finally:
        decoding.close()
    if stopped_at is None and switch:
        stopped_at = switch[0]  # its speech gave no segment in ``language``: it is planned anew
    confidence = sum(heard) / len(heard)
    if stopped_at is None:
        return Assumed(replace(run, confidence=confidence), segments, [])
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
    held = replace(run_of(before, language), confidence=confidence) if before else None
    return Assumed(held, kept, rest, suspect[0] if suspect and suspect[0] in rest else None)


class Assumed(NamedTuple):
    """What :func:`transcribe_assuming` transcribed, and where it stopped."""

    run: LanguageRun | None
    """The run that held (None if nothing did)."""
    segments: list[SpeechSegment]
    rest: list[Span]
    """The spans from the stop on (empty when the language held throughout)."""
    suspect: Span | None = None
    """The span whose slice of a window's encoding stopped the run, when one did (else a window
    that did not confirm the language stopped it, or nothing did)."""


def holds_alone(
    engine: WhisperEngine, audio: np.ndarray, speech: Sequence[Span], span: Span, language: str
) -> bool:
    """Whether ``span`` (one of ``speech``), heard on its own as :func:`plan_runs` hears a span that
    disagrees with its window, is still best heard as ``language``. A slice of a window's encoding
    is weak evidence: on an AVX-512 Xeon, slices of two spans of the one-language 84 s English file
    read Malayalam 0.40 (1.4 s) and Tagalog 0.13 (4.9 s), and planning the rest of the file span by
    span made the CLI 1.16 times as slow (paired runs)."""
    padded = dict(zip(speech, _padded(speech, len(audio) / SAMPLE_RATE), strict=True))
    return best(_identify_alone(engine, audio, padded[span]))[0] == language


def _with_words_before(spans: Sequence[Span], start: float) -> float:
    """Where a switch found at the span starting at ``start`` may begin: before the short spans (a
    word or two each) right before it, which a slice cannot judge (a Russian "Бедняга." 1.3 s
    before the rest of its sentence)."""
    at = next((i for i, s in enumerate(spans) if s.start >= start - 1e-6), len(spans))
    while at > 0 and spans[at - 1].duration < SHORT_SECONDS:
        at -= 1
    return spans[at].start if at < len(spans) else start


def _confirms(probabilities: Sequence[tuple[str, float]], language: str) -> bool:
    return bool(probabilities) and probabilities[0][0] == language and probabilities[0][1] >= CONFIDENT


def _span_start(spans: Sequence[Span], at: float) -> float:
    return _span_holding(spans, at).start


def _span_holding(spans: Sequence[Span], at: float) -> Span:
    """The first span not over by ``at``: the one holding it, or, when ``at`` falls in a pause
    (mapped times can), the next one; past the end, the last one (never nothing to redo)."""
    return next((s for s in spans if s.end > at), spans[-1])


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


def language_confidence(runs: Sequence[LanguageRun]) -> dict[str, float]:
    """How sure language ID was of each language: its runs' confidence, weighted by speech."""
    seconds: dict[str, float] = {}
    weighted: dict[str, float] = {}
    for run in runs:
        seconds[run.language] = seconds.get(run.language, 0.0) + run.speech_seconds
        weighted[run.language] = weighted.get(run.language, 0.0) + run.confidence * run.speech_seconds
    return {lang: weighted[lang] / seconds[lang] if seconds[lang] else 1.0 for lang in seconds}
