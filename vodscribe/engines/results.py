"""Small typed results shared by the engines and the pipeline (faster-whisper style)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word with absolute times in seconds. ``text`` keeps Whisper's leading space."""

    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass(frozen=True, slots=True)
class SpeechSegment:
    """One ASR segment: a phrase in one language, with its words (absolute times, seconds)."""

    start: float
    end: float
    text: str
    language: str  # Whisper / ISO 639-1 code, e.g. "en", "de", "haw"
    words: tuple[Word, ...] = field(default_factory=tuple)
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle cue; ``text`` holds at most two lines joined by a newline."""

    start: float
    end: float
    text: str
