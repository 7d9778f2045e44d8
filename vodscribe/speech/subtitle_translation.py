"""Subtitle translation: ASR segments of one language in, timed segments of another language out.

Every backend sits behind :class:`Translator`: ``segments in, segments out, timings kept``. The
output segments carry the translated text and words timed over the source speech; the caller turns
them into cues with :func:`vodscribe.speech.cues.build_cues`, so translated lines are wrapped
and timed by the same subtitle rules as transcribed ones.

Two kinds of backend:

* :class:`TextTranslation` wraps a text engine (CTranslate2 NMT, a local LLM). It is sentence-aware:
  the words of the segments are regrouped into sentences (cue boundaries cut sentences in half, and
  half a sentence translates badly), the sentences are translated in batches, and each translation
  is laid back over the time its source sentence was spoken. Words are placed in proportion to
  their length over the *speech* of the source sentence, skipping its pauses, so a translated line
  does not appear during a silence the original had.
* :class:`WhisperTranslation` is Whisper's own ``translate`` task (any language to English). It
  translates speech, not text, so the transcription pipeline runs it in place of recognition for the
  runs it takes (``from_speech``); it has no text path.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from vodscribe.engines.results import SpeechSegment, Word
from vodscribe.engines.text_translator import TextTranslator, TranslationError
from vodscribe.errors import Cancelled, UnsupportedTranslation
from vodscribe.languages import ENGLISH, Language, resolve
from vodscribe.speech.cues import ends_clause, ends_sentence, flatten_text, text_units, timed_words
from vodscribe.speech.vocabulary import Vocabulary, glossary, repair

#: A pause longer than this (seconds) between two words ends a sentence even without punctuation
#: (lower-case, unpunctuated ASR output would otherwise make one endless "sentence").
SENTENCE_PAUSE = 1.2
#: A sentence longer than this (seconds) is cut at its last clause mark, or here if it has none.
MAX_SENTENCE_SECONDS = 12.0
#: Gaps between source words shorter than this count as continuous speech when timing a translation.
SPEECH_GAP = 0.3
#: Sentences handed to a text engine at a time (cancellation and progress are checked in between).
CHUNK_SENTENCES = 32


@dataclass(frozen=True, slots=True)
class Sentence:
    """Source text to translate as one unit, with the words it came from (their times)."""

    text: str
    words: tuple[Word, ...]

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end


class Translator(Protocol):
    """A translation backend for subtitles (see the module docstring)."""

    name: str
    from_speech: bool
    """True when the backend translates audio (Whisper) rather than transcribed text."""

    def supports(self, source: Language, target: Language) -> bool: ...

    def targets(self) -> frozenset[str]:
        """ISO 639-2/B codes of the languages it can produce."""
        ...

    def translate(
        self,
        segments: Sequence[SpeechSegment],
        source: Language,
        target: Language,
        *,
        on_progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> list[SpeechSegment]:
        """Translate the segments of one language run; progress is 0.0-1.0, and ``should_stop``
        is polled between batches (raising :class:`~vodscribe.errors.Cancelled`). The terms of
        ``vocabulary`` come out as the team writes them in ``target``."""
        ...


# --- sentences -----------------------------------------------------------------------------------


def split_sentences(segments: Iterable[SpeechSegment]) -> list[Sentence]:
    """Regroup the words of ``segments`` (one language, in time order) into sentences."""
    words: list[Word] = []
    for segment in segments:
        for k, w in enumerate(w for w in timed_words(segment) if w.text.strip()):
            if k == 0 and not w.text[:1].isspace():  # a segment's first word is a word of its own
                w = Word(w.start, w.end, f" {w.text}", w.probability)
            words.append(w)
    sentences: list[Sentence] = []
    current: list[Word] = []

    def close(upto: int | None = None) -> None:
        nonlocal current
        taken, current = (current, []) if upto is None else (current[:upto], current[upto:])
        if taken:
            sentences.append(Sentence(flatten_text("".join(w.text for w in taken)), tuple(taken)))

    for i, word in enumerate(words):
        if current and word.start - current[-1].end > SENTENCE_PAUSE:
            close()
        current.append(word)
        if ends_sentence(word.text) or i == len(words) - 1:
            close()
        elif current[-1].end - current[0].start > MAX_SENTENCE_SECONDS:
            clause = max((k for k, w in enumerate(current[:-1]) if ends_clause(w.text)), default=None)
            close(None if clause is None else clause + 1)
    return sentences


# --- timing a translation ------------------------------------------------------------------------


def lay_over(text: str, source: Sentence) -> tuple[Word, ...]:
    """Words of the translation ``text`` timed over the speech of ``source``.

    The source words' intervals (gaps under :data:`SPEECH_GAP` closed) are the time the sentence was
    spoken; translated words share it in proportion to their length.
    """
    units = text_units(text)
    if not units:
        return ()
    intervals: list[list[float]] = []
    for w in source.words:
        start, end = w.start, max(w.end, w.start)
        if intervals and start - intervals[-1][1] <= SPEECH_GAP:
            intervals[-1][1] = max(intervals[-1][1], end)
        else:
            intervals.append([start, end])
    lengths = [end - start for start, end in intervals]
    if sum(lengths) <= 0:  # words without duration: spread over a token span
        intervals = [[source.start, max(source.end, source.start + 0.01)]]
        lengths = [intervals[0][1] - intervals[0][0]]
    ends = [0.0]
    for length in lengths:
        ends.append(ends[-1] + length)
    speech = ends[-1]

    def at(fraction: float, *, closing: bool) -> float:
        """The clock time ``fraction`` of the way through the speech."""
        t = fraction * speech
        i = bisect.bisect_left(ends, t) - 1 if closing else bisect.bisect_right(ends, t) - 1
        i = min(max(i, 0), len(intervals) - 1)
        return intervals[i][0] + (t - ends[i])

    total = sum(len(unit.strip()) for unit in units)
    words: list[Word] = []
    done = 0
    for unit in units:
        begin = done / total
        done += len(unit.strip())
        words.append(Word(start=at(begin, closing=False), end=at(done / total, closing=True), text=unit))
    return tuple(words)


# --- backends ------------------------------------------------------------------------------------


class TextTranslation:
    """Sentence-aware subtitle translation through a text engine."""

    from_speech = False

    def __init__(self, engine: TextTranslator) -> None:
        self.engine = engine
        self.name = engine.name

    def supports(self, source: Language, target: Language) -> bool:
        return self.engine.supports(source, target)

    def targets(self) -> frozenset[str]:
        return self.engine.targets()

    def translate(
        self,
        segments: Sequence[SpeechSegment],
        source: Language,
        target: Language,
        *,
        on_progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> list[SpeechSegment]:
        sentences = split_sentences(sorted(segments, key=lambda s: s.start))
        texts: list[str] = []
        for first in range(0, len(sentences), CHUNK_SENTENCES):
            if should_stop is not None and should_stop():
                raise Cancelled
            chunk = [s.text for s in sentences[first : first + CHUNK_SENTENCES]]
            wanted = [glossary(vocabulary, text, target.b) if vocabulary else {} for text in chunk]
            terms = {term: rendering for each in wanted for term, rendering in each.items()}
            if terms:
                done = self.engine.translate(chunk, source, target, terms)
            else:  # an engine without a glossary is asked as before
                done = self.engine.translate(chunk, source, target)
            if len(done) != len(chunk):
                raise TranslationError(
                    f"{self.name} returned {len(done)} translations for {len(chunk)} sentences"
                )
            texts += [repair(text, each) for text, each in zip(done, wanted, strict=True)]
            if on_progress is not None:
                on_progress(len(texts) / len(sentences))
        out: list[SpeechSegment] = []
        for sentence, text in zip(sentences, texts, strict=True):
            words = lay_over(text, sentence)
            if words:
                out.append(
                    SpeechSegment(
                        start=words[0].start,
                        end=words[-1].end,
                        text=flatten_text(text),
                        language=target.whisper,
                        words=words,
                    )
                )
        return out


class WhisperTranslation:
    """Whisper's ``translate`` task: speech in any language Whisper knows to English text."""

    name = "whisper"
    from_speech = True

    def supports(self, source: Language, target: Language) -> bool:
        return target is ENGLISH and source is not ENGLISH

    def targets(self) -> frozenset[str]:
        return frozenset({ENGLISH.b})

    def translate(
        self,
        segments: Sequence[SpeechSegment],
        source: Language,
        target: Language,
        *,
        on_progress: Callable[[float], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        vocabulary: Vocabulary | None = None,
    ) -> list[SpeechSegment]:
        raise TranslationError("Whisper translates speech: the pipeline runs it during recognition")


def choose(translators: Sequence[Translator], source: Language, target: Language) -> Translator | None:
    """The first backend (in configured order) that can translate ``source`` into ``target``."""
    return next((t for t in translators if t.supports(source, target)), None)


def require(translators: Sequence[Translator], source: Language, target: Language) -> Translator:
    """:func:`choose`, or :class:`UnsupportedTranslation` naming the languages that are on offer."""
    backend = choose(translators, source, target)
    if backend is None:
        available = sorted({code for t in translators for code in t.targets()})
        names = ", ".join(resolve(code).name for code in available) or "none"
        raise UnsupportedTranslation(
            f"Translation from {source.name} to {target.name} is not supported by this server "
            f"(subtitle languages it can translate into: {names})."
        )
    return backend
