"""Long media: windows cut in silence, flat memory, steady progress, cancel; and the batched engine.

The long files are real speech spread through faint noise (``tests/long_media.py``)."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.long_media import spread_speech
from vodscribe.config import AsrOptions
from vodscribe.engines.whisper import SAMPLE_RATE, Span, WhisperEngine, get_engine
from vodscribe.errors import Cancelled
from vodscribe.media.probe import decode_audio, probe, stream_audio
from vodscribe.speech.cues import concatenated_text
from vodscribe.speech.transcription import transcribe_file
from vodscribe.speech.windows import TAIL_SECONDS, speech_windows

DATA = Path(__file__).parent / "data"
CLIPS = (DATA / "jfk_librivox.mp4", DATA / "ldc93s1.wav")
#: What each clip says, in words no other clip has.
SAID = ("fellow americans", "greasy")


@pytest.fixture(scope="module")
def long_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """Ten minutes: the two clips in turn, each followed by 70 s of faint noise.

    With this noise (seed 6), Whisper ends the first window's joined speech before its last
    sentence (``greasy`` at 94 s), which is then decoded again on its own: without that, the
    transcription test fails (2 of 18 seeds tried here did so)."""
    out = tmp_path_factory.mktemp("long") / "ten-minutes.flac"
    return out, spread_speech(out, CLIPS, 600, gap_seconds=70, seed=6)


def test_windows_hold_every_sample_once_and_are_cut_in_silence(long_file: tuple[Path, list[float]]) -> None:
    path, _ = long_file
    info = probe(path)
    whole = decode_audio(path, info)
    speech = WhisperEngine.speech_spans(whole)  # VAD over the whole file, the reference
    windows = list(speech_windows(stream_audio(path, info), WhisperEngine.speech_spans, window_seconds=120))
    assert len(windows) >= 5
    assert np.array_equal(np.concatenate([w.audio for w in windows]), whole)
    for before, after in itertools.pairwise(windows):
        assert after.start == pytest.approx(before.end, abs=1 / SAMPLE_RATE)
    for window in windows[:-1]:
        assert len(window.audio) <= (120 + 30) * SAMPLE_RATE  # a window and one decoded block at most
        inside = [s for s in speech if s.start + 0.3 < window.end < s.end - 0.3]
        assert not inside, f"the window ending at {window.end:.1f} s cuts speech {inside}"
    found = [Span(w.start + s.start, w.start + s.end) for w in windows for s in w.spans]
    # VAD keeps state, which a window starts afresh: edges move a little, no speech is lost.
    for reference in speech:
        assert any(min(f.end, reference.end) > max(f.start, reference.start) for f in found), reference
    assert sum(f.duration for f in found) == pytest.approx(sum(s.duration for s in speech), rel=0.1)


def test_speech_that_never_pauses_for_a_window_is_cut_at_its_quietest() -> None:
    path = DATA / "multilingual_en_de.mp3"
    info = probe(path)
    whole = decode_audio(path, info)
    blocks = stream_audio(path, info, block_seconds=5)
    windows = list(speech_windows(blocks, WhisperEngine.speech_spans, window_seconds=12))
    assert np.array_equal(np.concatenate([w.audio for w in windows]), whole)
    assert all(len(w.audio) <= (12 + 5) * SAMPLE_RATE for w in windows)
    for window in windows[:-1]:
        edge = int(window.end * SAMPLE_RATE)
        around = whole[max(0, edge - 4 * SAMPLE_RATE) : edge + int(TAIL_SECONDS * SAMPLE_RATE)]
        cut = whole[edge - 800 : edge + 800]
        assert np.sqrt(np.mean(cut**2)) <= np.sqrt(np.mean(around**2)), "cut where it is quieter than around"


@pytest.mark.slow  # loads Whisper, recognises about two minutes of speech
def test_a_long_file_is_transcribed_in_windows_with_steady_progress(
    long_file: tuple[Path, list[float]],
) -> None:
    path, starts = long_file
    progress: list[float] = []
    transcript = transcribe_file(path, get_engine(), on_progress=progress.append)
    assert transcript.languages == ("en",)
    for i, start in enumerate(starts):
        said = SAID[i % len(SAID)]
        near = [c for c in transcript.cues if start - 0.5 <= c.start <= start + 25]
        assert said in concatenated_text(near).lower().replace(",", ""), f"clip {i} at {start:.0f} s"
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert len({round(p, 2) for p in progress if 0 < p < 1}) >= 10, "progress moves steadily"


@pytest.mark.slow  # loads Whisper
def test_cancel_takes_effect_in_the_window_being_recognised(long_file: tuple[Path, list[float]]) -> None:
    path, _ = long_file
    progress: list[float] = []
    with pytest.raises(Cancelled):
        transcribe_file(
            path,
            get_engine(),
            on_progress=progress.append,
            should_stop=lambda: bool(progress) and progress[-1] > 0.3,
        )
    assert 0.3 < progress[-1] < 0.6  # one window is a fifth of this file


def _peak_rss_mb(path: Path) -> float:
    """Peak resident memory of ``vodscribe transcribe`` on ``path``, in its own process."""
    cli = str(Path(sys.executable).parent / "vodscribe")
    proc = subprocess.Popen([cli, "transcribe", str(path), "--quiet"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return usage.ru_maxrss / 1024


@pytest.mark.slow  # two transcriptions in their own processes, one of 40 minutes of audio
def test_memory_does_not_grow_with_duration(tmp_path: Path) -> None:
    short = tmp_path / "short.flac"
    spread_speech(short, CLIPS[:1], 240, gap_seconds=240)
    long = tmp_path / "long.flac"
    spread_speech(long, CLIPS[:1], 2400, gap_seconds=2400)
    # 40 minutes of float32 samples alone are 154 MB: holding the file would show.
    assert _peak_rss_mb(long) <= 1.1 * _peak_rss_mb(short)


@pytest.mark.slow  # loads a second Whisper engine
def test_batched_engine_maps_times_back_to_the_speech() -> None:
    path = DATA / "jfk_librivox.mp4"
    audio = decode_audio(path, probe(path))
    spans = WhisperEngine.speech_spans(audio)
    sequential = list(
        get_engine(options=AsrOptions(batch_size=0)).transcribe(audio, language="en", spans=spans)
    )
    batched = list(get_engine(options=AsrOptions(batch_size=4)).transcribe(audio, language="en", spans=spans))
    for segments in (sequential, batched):
        text = concatenated_text(segments).lower()
        assert "ask not what your country can do for you" in text and "dashwood" in text
        for word in (w for s in segments for w in s.words):  # the middle: a word may straddle a join
            assert any(s.start <= (word.start + word.end) / 2 <= s.end for s in spans), word
    onsets = [
        next(w.start for s in segments for w in s.words if "dashwood" in w.text.lower())
        for segments in (sequential, batched)
    ]
    assert onsets[0] == pytest.approx(onsets[1], abs=0.5)
