"""Long media in bounded windows: decoded audio is cut into windows of at most a few minutes, each
cut in a silence, so every later step (speech detection, language planning, recognition) holds one
window at a time and memory does not grow with the duration.

A window is cut at the middle of the last silence that VAD has seen close: speech near the end of
the buffer may go on in the next block, so only spans ending :data:`TAIL_SECONDS` before the end count
as finished, and the audio after the cut is carried into the next window. Speech that never pauses
for a whole window (or music that VAD takes for speech) is cut at the quietest moment near the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from vodscribe.engines.whisper import SAMPLE_RATE, Span

#: Seconds of audio a window holds at most (plus what is carried over): 7.7 MB of float32 samples.
WINDOW_SECONDS = 120.0
#: Speech ending this close to the end of the buffer may still go on: the cut is made before it.
TAIL_SECONDS = 2.0
#: Where speech never pauses, the cut is made at the quietest 100 ms of this many seconds.
SEARCH_SECONDS = 10.0
_FRAME = SAMPLE_RATE // 10


@dataclass(frozen=True, slots=True)
class SpeechWindow:
    """A stretch of the file and the speech in it; span times are seconds into ``audio``."""

    start: float
    """Seconds into the file (the audio clock: 0 is the first audio sample) of ``audio[0]``."""
    audio: np.ndarray
    spans: tuple[Span, ...]

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / SAMPLE_RATE


def speech_windows(
    blocks: Iterable[np.ndarray],
    detect: Callable[[np.ndarray], Sequence[Span]],
    *,
    window_seconds: float = WINDOW_SECONDS,
) -> Iterator[SpeechWindow]:
    """Gather ``blocks`` of decoded audio into windows cut in silence; ``detect`` finds the speech
    spans of a buffer (VAD). Every sample of the input is in exactly one window, in order."""
    size = int(window_seconds * SAMPLE_RATE)
    source = iter(blocks)
    buffered: list[np.ndarray] = []
    held = 0
    start = 0  # samples of the file before the buffer
    while True:
        finished = True
        for block in source:
            buffered.append(block)
            held += len(block)
            if held >= size:
                finished = False
                break
        if not held:
            return
        audio = np.concatenate(buffered) if len(buffered) > 1 else buffered[0]
        buffered = []
        spans = list(detect(audio))
        if finished:
            yield SpeechWindow(start / SAMPLE_RATE, audio, tuple(spans))
            return
        cut, kept = _cut(audio, spans)
        yield SpeechWindow(start / SAMPLE_RATE, audio[:cut], kept)
        rest = audio[cut:].copy()  # a copy, so the window's samples can be freed
        buffered, held, start = [rest], len(rest), start + cut


def _cut(audio: np.ndarray, spans: Sequence[Span]) -> tuple[int, tuple[Span, ...]]:
    """Where to end a window over ``audio`` (a sample index) and the speech spans before it."""
    length = len(audio) / SAMPLE_RATE
    closed = [i for i, span in enumerate(spans) if span.end <= length - TAIL_SECONDS]
    if closed:
        last = closed[-1]
        following = spans[last + 1].start if last + 1 < len(spans) else length - TAIL_SECONDS
        cut = (spans[last].end + max(following, spans[last].end)) / 2
        return int(cut * SAMPLE_RATE), tuple(spans[: last + 1])
    if not spans or spans[0].start >= length - TAIL_SECONDS:
        cut = length - TAIL_SECONDS  # silence (or speech just starting): keep the tail for the next one
        return int(cut * SAMPLE_RATE), ()
    at = _quietest(audio, int((length - TAIL_SECONDS) * SAMPLE_RATE))
    seconds = at / SAMPLE_RATE
    kept = tuple(Span(s.start, min(s.end, seconds)) for s in spans if s.start < seconds)
    return at, kept


def _quietest(audio: np.ndarray, before: int) -> int:
    """The middle of the quietest 100 ms frame among the :data:`SEARCH_SECONDS` before ``before``."""
    first = max(0, before - int(SEARCH_SECONDS * SAMPLE_RATE))
    frames = (before - first) // _FRAME
    if frames < 1:
        return before
    region = audio[first : first + frames * _FRAME].reshape(frames, _FRAME)
    energy = np.square(region, dtype=np.float64).mean(axis=1)
    return first + int(np.argmin(energy)) * _FRAME + _FRAME // 2
