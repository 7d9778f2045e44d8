"""The transcription pipeline for one local media file: probe -> decode -> detect speech ->
plan languages -> recognise -> segment into cues. Used by the worker and by the CLI.

Audio is decoded lazily and handled one window of a few minutes at a time (:mod:`.windows`), so a
four-hour file needs no more memory than a ten-minute one; only the recognised words are kept."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from vodscribe import languages
from vodscribe.engines.results import Cue, SpeechSegment
from vodscribe.engines.whisper import SAMPLE_RATE, EngineStopped, Span, WhisperEngine
from vodscribe.errors import Cancelled
from vodscribe.languages import Language
from vodscribe.media.probe import MediaInfo, probe, require_audio, stream_audio
from vodscribe.speech.cues import build_cues
from vodscribe.speech.language_runs import (
    CONFIDENT,
    LanguageRun,
    StartLanguage,
    holds_alone,
    identify_speech,
    identify_start,
    language_confidence,
    plan_runs,
    rank_languages,
    run_of,
    transcribe_assuming,
    transcribe_runs,
)
from vodscribe.speech.stored_recognition import Recognized
from vodscribe.speech.subtitle_translation import Translator, WhisperTranslation, require
from vodscribe.speech.vocabulary import Vocabulary, fix_segments, hotwords, maybe_said, says
from vodscribe.speech.windows import SpeechWindow, speech_windows

#: Share of a run's progress that text translation takes, when a text backend translates it.
TRANSLATE_SHARE = 0.3
#: How many spans a window's run may go on past (heard on their own, still in its language) before
#: the rest of the window is planned span by span: each costs the run its window's realignment.
MAX_DOUBTS = 3


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
    confidence: tuple[float, ...] = ()
    """For each of ``languages`` identified (not given), how sure language ID was of it (0-1)."""

    @property
    def speech_detected(self) -> bool:
        return bool(self.cues)


def transcribe_file(
    path: Path,
    engine: WhisperEngine,
    *,
    language: str | None = None,
    subtitles_language: Language | None = None,
    translators: Sequence[Translator] = (WhisperTranslation(),),
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_seconds: float | None = None,
    reuse: Recognized | None = None,
    on_segments: Callable[[Sequence[SpeechSegment]], None] | None = None,
    vocabulary: Vocabulary | None = None,
) -> Transcript:
    """Transcribe ``path``; ``language`` (Whisper code) skips detection. Progress is 0.0-1.0.
    ``on_segments`` is given each language run's segments (translated where asked) once they are
    final, in time order: what a request that streams its answer sends as it goes. The terms of
    ``vocabulary`` are written as given wherever the words heard are a near miss of them (the
    engine is given them as hotwords by the caller, :class:`~vodscribe.engines.whisper.Decoding`),
    and translations write them as the vocabulary renders them.

    With ``subtitles_language``, speech in any other language is translated into it by the first of
    ``translators`` that supports the pair (each language run of a code-switching file on its own;
    speech already in ``subtitles_language`` is kept as spoken). :class:`UnsupportedTranslation` is raised as
    soon as a run's language has no backend, before any recognition work is spent on that run.

    ``reuse`` is an earlier recognition of the same file: the speech is then not recognised again,
    only translated (unless a run needs Whisper's own translation, which works on the audio).
    """

    def report(fraction: float) -> None:
        if on_progress is not None:
            on_progress(fraction)

    info = probe(path)
    require_audio(info)
    if reuse is not None:
        backends = {run: _backend(run, subtitles_language, translators) for run, _ in reuse.runs}
        if not any(b is not None and b.from_speech for b in backends.values()):
            return _from_recognized(
                info, reuse, backends, subtitles_language, language, report, should_stop, vocabulary
            )
    blocks = stream_audio(path, info, max_seconds=max_seconds, should_stop=should_stop)
    progress = _Position(report, info.duration)
    backends = {}
    segments: list[SpeechSegment] = []
    spoken: list[tuple[LanguageRun, tuple[SpeechSegment, ...]]] = []
    try:
        for window in speech_windows(blocks, engine.speech_spans):
            progress.window(window)
            for run, run_segments, backend in _recognise(
                engine,
                window,
                language,
                subtitles_language,
                translators,
                progress,
                should_stop,
                tuple(run for run, _ in spoken),
            ):
                backends[run] = backend
                if vocabulary:
                    run_segments = _with_terms(engine, window, run, run_segments, vocabulary, backend)
                    run_segments = fix_segments(run_segments, vocabulary)
                spoken.append((run, tuple(run_segments)))
                if backend is not None and not backend.from_speech and subtitles_language is not None:
                    run_segments = backend.translate(
                        run_segments,
                        languages.from_whisper(run.language),
                        subtitles_language,
                        on_progress=partial(progress.translation, run),
                        should_stop=should_stop,
                        vocabulary=vocabulary,
                    )
                segments += run_segments
                if on_segments is not None and run_segments:
                    on_segments(run_segments)
            progress.done_to(window.end)
    except EngineStopped as exc:
        raise Cancelled from exc
    from_speech = any(b is not None and b.from_speech for b in backends.values())
    recognized = None if from_speech else Recognized(tuple(spoken))
    return _finish(info, segments, spoken, backends, language, recognized, report)


def _recognise(
    engine: WhisperEngine,
    window: SpeechWindow,
    language: str | None,
    subtitles_language: Language | None,
    translators: Sequence[Translator],
    progress: _Position,
    should_stop: Callable[[], bool] | None,
    before: Sequence[LanguageRun] = (),
) -> Iterator[tuple[LanguageRun, list[SpeechSegment], Translator | None]]:
    """One window's language runs with their segments and backends (on the file's clock).

    With the spoken language unknown, the window is first taken to go on in the language of the
    last run ``before`` it, or, at the start of the file, in that of its speech where all of it fits
    one Whisper window (a short clip, identified from the encoding its decoding then reuses:
    :func:`identify_speech`), else, or where that is unsure, in that of its first 30 s of speech;
    Whisper's own encoding of each window, and of each span's slice of it, checks that as it goes
    (:func:`transcribe_assuming`), and from where it does not hold, the rest is planned as
    :func:`plan_runs` plans (a language-ID pass per ≤30 s of speech, span by span where a span may
    be in another language or the window is unsure, preferring the languages found before).
    So a file in one language costs one language-ID pass, as plain faster-whisper's does, and a
    short clip in one language one encoder pass, where plain faster-whisper's costs two.

    A run's translation backend is chosen before it is recognised, so a language no backend takes
    fails the task before recognition is spent on it (:class:`UnsupportedTranslation`)."""
    spans: Sequence[Span] = window.spans
    known = tuple(dict.fromkeys(run.language for run in before))
    start: StartLanguage | None = None
    if language is None and engine.batch_size == 0 and spans:
        assumed = before[-1].language if before else None
        checked_from, confidence = 0.0, before[-1].confidence if before else 1.0
        if assumed is None:
            # A short clip is identified from the encoding its decoding reuses; where that is unsure,
            # or the speech is longer, from its first 30 s of speech with pauses and context.
            start = identify_speech(engine, window.audio, spans)
            if start is None or start.probability < CONFIDENT:
                start = identify_start(engine, window.audio, spans)
            assumed, confidence, checked_from = start.language, start.probability, start.end
            if confidence < CONFIDENT:
                assumed = None  # unsure from the start: the plan decides span by span
        cleared: list[Span] = []
        while assumed is not None and spans:
            whole = _moved(run_of(spans, assumed), window.start)
            backend = _backend(whole, subtitles_language, translators)
            if backend is not None and not backend.from_speech:
                progress.expect_translation(whole)

            def recognised(_: LanguageRun, seg: SpeechSegment, whole: LanguageRun = whole) -> None:
                progress.recognition(whole, seg.end)

            held = transcribe_assuming(
                engine,
                window.audio,
                spans,
                assumed,
                checked_from=checked_from,
                confidence=confidence,
                task="translate" if backend is not None and backend.from_speech else "transcribe",
                offset=window.start,
                on_segment=recognised,
                should_stop=should_stop,
                cleared=cleared,
            )
            spans = held.rest
            if held.run is not None:
                known = tuple(dict.fromkeys((*known, held.run.language)))
                moved = _moved(held.run, window.start)
                if backend is not None and not backend.from_speech:
                    progress.expect_translation(moved)
                yield moved, held.segments, backend
            # A span whose slice doubted the language is heard on its own; where that still hears
            # the language, the run goes on past it, since planning the rest span by span costs a
            # language-ID pass per window. A few such doubts a window at most, then the plan.
            suspect = held.suspect
            if suspect is None or len(cleared) >= MAX_DOUBTS:
                break
            if not holds_alone(engine, window.audio, window.spans, suspect, assumed):
                break
            cleared.append(suspect)
    if not spans:
        return
    planned = plan_runs(
        engine,
        window.audio,
        spans,
        language=language,
        known=known,
        speech=window.spans,
        should_stop=should_stop,
        start=start,
    )
    backends = {run: _backend(_moved(run, window.start), subtitles_language, translators) for run in planned}
    for run, backend in backends.items():
        if backend is not None and not backend.from_speech:
            progress.expect_translation(_moved(run, window.start))
    for run, run_segments in transcribe_runs(
        engine,
        window.audio,
        planned,
        to_english=lambda run: (b := backends[run]) is not None and b.from_speech,
        offset=window.start,
        on_segment=lambda run, seg: progress.recognition(_moved(run, window.start), seg.end),
        should_stop=should_stop,
    ):
        moved = _moved(run, window.start)
        yield moved, run_segments, backends[run]


def _moved(run: LanguageRun, by: float) -> LanguageRun:
    """``run`` of a window, on the file's clock."""
    if not by:
        return run
    return replace(
        run,
        span=Span(run.span.start + by, run.span.end + by),
        spans=tuple(Span(s.start + by, s.end + by) for s in run.spans),
    )


def _from_recognized(
    info: MediaInfo,
    recognized: Recognized,
    backends: dict[LanguageRun, Translator | None],
    subtitles_language: Language | None,
    language: str | None,
    report: Callable[[float], None],
    should_stop: Callable[[], bool] | None,
    vocabulary: Vocabulary | None = None,
) -> Transcript:
    """The subtitles of an earlier recognition: only the runs in another language are translated."""
    progress = _Position(report, info.duration, translate_share=1.0)  # nothing left to recognise
    segments: list[SpeechSegment] = []
    for run, spoken in recognized.runs:
        backend = backends[run]
        if backend is not None and subtitles_language is not None:
            translated = backend.translate(
                list(spoken),
                languages.from_whisper(run.language),
                subtitles_language,
                on_progress=partial(progress.translation, run),
                should_stop=should_stop,
                vocabulary=vocabulary,
            )
            segments += translated
        else:
            segments += spoken
    return _finish(info, segments, recognized.runs, backends, language, recognized, report)


def _finish(
    info: MediaInfo,
    segments: list[SpeechSegment],
    spoken: Sequence[tuple[LanguageRun, Sequence[SpeechSegment]]],
    backends: dict[LanguageRun, Translator | None],
    language: str | None,
    recognized: Recognized | None,
    report: Callable[[float], None],
) -> Transcript:
    # Whisper's audio clock starts at the first audio sample; players use the container clock.
    if info.audio_start:
        segments = [_shift(s, info.audio_start) for s in segments]
    cues = tuple(build_cues(segments))
    runs = [run for run, run_segments in spoken if run_segments]  # a run that gave no text names no language
    languages_ = tuple(rank_languages(runs)) if cues else ((language,) if language else ())
    sure = language_confidence(runs)
    confidence = tuple(sure[lang] for lang in languages_) if cues and language is None else ()
    used = tuple(dict.fromkeys(b.name for b in backends.values() if b is not None))
    report(1.0)
    return Transcript(
        media=info,
        segments=tuple(segments),
        cues=cues,
        languages=languages_,
        translated_by=used,
        recognized=recognized,
        confidence=confidence,
    )


class _Position:
    """Progress as the position in the file that recognition (and translation) has reached.

    Media time is known before any audio is decoded, so the bar moves steadily on a long file,
    jumping over silence; a run translated as text takes ``1 - TRANSLATE_SHARE`` of its stretch for
    recognition and the rest for the translation."""

    def __init__(
        self, report: Callable[[float], None], duration: float, translate_share: float = TRANSLATE_SHARE
    ) -> None:
        self.report = report
        self.share = translate_share
        self.duration = duration if duration > 0 else 0.0
        self.reached = 0.0
        self.translated: set[LanguageRun] = set()

    def window(self, window: SpeechWindow) -> None:
        self._emit(window.start)

    def done_to(self, seconds: float) -> None:
        self._emit(seconds)

    def recognition(self, run: LanguageRun, seconds: float) -> None:
        share = 1.0 - self.share if run in self.translated else 1.0
        self._at(run, share * _within(run, seconds))

    def expect_translation(self, run: LanguageRun) -> None:
        self.translated.add(run)

    def translation(self, run: LanguageRun, fraction: float) -> None:
        self._at(run, 1.0 - self.share + self.share * fraction)

    def _at(self, run: LanguageRun, fraction: float) -> None:
        self._emit(run.span.start + fraction * run.span.duration)

    def _emit(self, seconds: float) -> None:
        self.reached = max(self.reached, seconds)
        if self.duration:
            self.report(min(0.99, self.reached / self.duration))


def _within(run: LanguageRun, seconds: float) -> float:
    if run.span.duration <= 0:
        return 1.0
    return min(1.0, max(0.0, (seconds - run.span.start) / run.span.duration))


def _backend(
    run: LanguageRun, subtitles_language: Language | None, translators: Sequence[Translator]
) -> Translator | None:
    """The backend that translates ``run`` into ``subtitles_language``; None when no translation is needed."""
    if subtitles_language is None:
        return None
    source = languages.from_whisper(run.language)
    if source is subtitles_language:
        return None
    return require(translators, source, subtitles_language)


#: How much less likely (mean log-probability of its tokens) speech heard again with the terms as
#: hotwords may be than as first heard, and still be taken.
TERM_LOGPROB_MARGIN = 0.3
#: Audio kept around a segment heard again (seconds each side).
TERM_PADDING = 0.2


def _with_terms(
    engine: WhisperEngine,
    window: SpeechWindow,
    run: LanguageRun,
    segments: list[SpeechSegment],
    vocabulary: Vocabulary,
    backend: Translator | None,
) -> list[SpeechSegment]:
    """``segments`` where each one that may have said a term not written as such (:func:`maybe_said`)
    is heard again on its own with the vocabulary as Whisper's hotwords, and that reading taken where
    it writes a term and Whisper finds it about as likely (:data:`TERM_LOGPROB_MARGIN`).

    Hotwords bias every word: given for the whole file, the bundled model wrote "Reduxo" for "a dark
    suit" and repeated a German sentence (bench/README.md), so they are given only where a term may
    have been said, and kept only where they found one."""
    if backend is not None and backend.from_speech:
        return segments  # Whisper translated this speech: its words are English, not the terms'
    out: list[SpeechSegment] = []
    for seg in segments:
        if not maybe_said([w.text for w in seg.words] or seg.text.split(), vocabulary):
            out.append(seg)
            continue
        start = max(0.0, seg.start - window.start - TERM_PADDING)
        end = min(len(window.audio) / SAMPLE_RATE, seg.end - window.start + TERM_PADDING)
        clip = window.audio[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]
        with engine.asking(replace(engine.asked, hotwords=hotwords(vocabulary))):
            again = list(engine.transcribe(clip, language=run.language, offset=window.start + start))
        text = " ".join(s.text for s in again)
        heard = sum(s.avg_logprob * len(s.words or (s,)) for s in again) / max(
            1, sum(len(s.words or (s,)) for s in again)
        )
        found = [t.text for t in vocabulary.terms if says(text, t.text) and not says(seg.text, t.text)]
        if again and found and heard >= seg.avg_logprob - TERM_LOGPROB_MARGIN:
            out += [replace(s, language=seg.language) for s in again]
        else:
            out.append(seg)
    return out


def _shift(seg: SpeechSegment, by: float) -> SpeechSegment:
    words = tuple(replace(w, start=w.start + by, end=w.end + by) for w in seg.words)
    return replace(seg, start=seg.start + by, end=seg.end + by, words=words)
