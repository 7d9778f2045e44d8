"""Translating a subtitle's own text, not the speech: what a person corrected in the editor is what
gets translated.

The cues' text is read as one language run, regrouped into sentences across cue borders by the same
rules as recognised speech (:func:`~vodscribe.speech.subtitle_translation.split_sentences`: a cue's
words are spread over its time in proportion to their length), translated sentence by sentence by a
text backend, laid back over the time each source sentence was shown, and cut into cues by the same
reading rules as every other subtitle. Nothing comes out before the first source cue or after the
last one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from vodscribe.engines.results import Cue, SpeechSegment
from vodscribe.errors import UnsupportedTranslation
from vodscribe.languages import Language
from vodscribe.speech.cues import build_cues, flatten_text
from vodscribe.speech.subtitle_translation import Translator, require
from vodscribe.speech.vocabulary import Vocabulary


@dataclass(frozen=True, slots=True)
class TranslatedText:
    cues: tuple[Cue, ...]
    segments: tuple[SpeechSegment, ...]
    backend: str


def translate_cues(
    cues: Sequence[Cue],
    source: Language,
    target: Language,
    translators: Sequence[Translator],
    *,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    vocabulary: Vocabulary | None = None,
) -> TranslatedText:
    """``cues`` (in ``source``) as cues in ``target``; :class:`UnsupportedTranslation` when no text
    backend translates the pair (Whisper's own translation works on speech, not text)."""
    text_backends = [t for t in translators if not t.from_speech]
    if not text_backends:
        raise UnsupportedTranslation("No text translation backend is configured on this server.")
    backend = require(text_backends, source, target)
    spoken = [
        SpeechSegment(cue.start, cue.end, " " + flatten_text(cue.text), source.whisper)
        for cue in sorted(cues, key=lambda c: c.start)
        if cue.text.strip() and cue.end > cue.start
    ]
    if not spoken:
        return TranslatedText((), (), backend.name)
    translated = backend.translate(
        spoken, source, target, on_progress=on_progress, should_stop=should_stop, vocabulary=vocabulary
    )
    first, last = spoken[0].start, max(s.end for s in spoken)
    out = tuple(_within(c, first, last) for c in build_cues(translated))
    return TranslatedText(tuple(c for c in out if c.end > c.start), tuple(translated), backend.name)


def _within(cue: Cue, first: float, last: float) -> Cue:
    """``cue`` inside the source's span (the reading rules may lengthen the last cue past it)."""
    return replace(cue, start=max(cue.start, first), end=min(cue.end, last))
