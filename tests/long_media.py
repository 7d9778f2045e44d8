"""Long audio files made from the test clips: speech spread through quiet noise, written by ffmpeg
without ever holding the whole file in memory (used by the tests and by bench/memory.py)."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


def as_wav(source: Path, out: Path) -> Path:
    """``source`` as 16 kHz mono 16-bit WAV (the one format the concat list joins)."""
    _ffmpeg("-i", str(source), "-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", str(out))
    return out


def quiet(out: Path, seconds: float, seed: int = 0) -> Path:
    """Faint pink noise (a room, not digital silence), 16 kHz mono WAV; the same for the same
    ``seed`` (ffmpeg's own default is a new noise every run)."""
    noise = f"anoisesrc=color=pink:amplitude=0.003:sample_rate=16000:duration={seconds}:seed={seed}"
    _ffmpeg(
        "-f", "lavfi", "-i", noise,
        "-ac", "1", "-c:a", "pcm_s16le", str(out),
    )  # fmt: skip
    return out


def spread_speech(
    out: Path, clips: Sequence[Path], total_seconds: float, *, gap_seconds: float, seed: int = 0
) -> list[float]:
    """Write ``out`` (FLAC, 16 kHz mono): ``clips`` in turn, each followed by ``gap_seconds`` of quiet
    (noise from ``seed``), repeated until ``total_seconds``. Returns where each clip starts (seconds)."""
    starts: list[float] = []
    with tempfile.TemporaryDirectory(prefix="long-media-") as tmp:
        folder = Path(tmp)
        wavs = [as_wav(clip, folder / f"clip{i}.wav") for i, clip in enumerate(clips)]
        gap = quiet(folder / "gap.wav", gap_seconds, seed)
        durations = [_seconds(w) for w in wavs]
        lines, at, i = [], 0.0, 0
        while at < total_seconds:
            wav, length = wavs[i % len(wavs)], durations[i % len(wavs)]
            starts.append(at)
            lines += [f"file '{wav}'", f"file '{gap}'"]
            at += length + gap_seconds
            i += 1
        playlist = folder / "list.txt"
        playlist.write_text("\n".join(lines) + "\n")
        _ffmpeg("-f", "concat", "-safe", "0", "-i", str(playlist), "-c:a", "flac", str(out))
    return starts


def repeated(out: Path, clip: Path, times: int) -> Path:
    """``clip`` ``times`` times in a row, as 16 kHz mono WAV."""
    with tempfile.TemporaryDirectory(prefix="long-media-") as tmp:
        wav = as_wav(clip, Path(tmp) / "clip.wav")
        playlist = Path(tmp) / "list.txt"
        playlist.write_text(f"file '{wav}'\n" * times)
        _ffmpeg("-f", "concat", "-safe", "0", "-i", str(playlist), "-c:a", "pcm_s16le", str(out))
    return out


def _seconds(wav: Path) -> float:
    from vodscribe.media.probe import probe

    return probe(wav).duration
