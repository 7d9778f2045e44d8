"""Run the ffmpeg binary from the ``imageio-ffmpeg`` wheel safely, with progress and cancellation.

Rules (docs/design.md, "Media"):

* ffmpeg never sees a URL and never guesses a format: inputs go through :func:`input_args`, which
  forces the demuxer that :func:`~vodscribe.media.probe.sniff` recognised and allows only the
  ``file`` protocol (an ``.mp4`` that is really an HLS playlist cannot make ffmpeg read other files).
* ffmpeg runs in its own process group, so a cancel (or any exception in the caller) kills it and
  anything it started, and never leaves an orphan encoding in the background.
* Its error output is summarised for the user without our file paths.
"""

from __future__ import annotations

import contextlib
import errno
import os
import queue
import re
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import IO

import imageio_ffmpeg

from vodscribe.errors import Cancelled, CorruptMediaError, MediaError
from vodscribe.media.probe import MediaKind, ffmpeg_format
from vodscribe.media.stop_check import StopCheck

#: Global options added to every run: quiet except errors, machine-readable progress on stdout,
#: never read the terminal, overwrite outputs (with -nostdin ffmpeg would otherwise refuse).
COMMON_ARGS: tuple[str, ...] = (
    *("-hide_banner", "-nostdin", "-v", "error"),
    *("-progress", "pipe:1", "-nostats", "-y"),
)

#: How often (seconds) ``should_stop`` is polled while ffmpeg prints nothing.
_POLL_S = 0.25
#: Lines of stderr kept for the error message.
_STDERR_TAIL = 40
#: Longest error summary shown to the user.
_MAX_SUMMARY = 300

_EOF = None
_LOG_PREFIX = re.compile(r"^\[[^\]]*\]\s*")  # "[mov,mp4,m4a @ 0x55d0...] " or "[vost#0:0/libx264 @ ...] "
_ABS_PATH = re.compile(r"(?<![\w.])/[^\s'\",:;]+")
_UNSUPPORTED = re.compile(
    r"(decoder|codec) .*not found|unsupported|not implemented|no decoder", re.IGNORECASE
)


@cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary shipped by imageio-ffmpeg."""
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def input_args(path: Path, kind: MediaKind) -> list[str]:
    """Arguments that open a local file as ``-i`` with only the file protocol and a forced demuxer.

    The path is made absolute so nothing in it can read as a protocol prefix (``foo:bar.mp4``).
    """
    return ["-protocol_whitelist", "file", "-f", ffmpeg_format(kind), "-i", str(Path(path).resolve())]


def run_ffmpeg(
    args: list[str],
    *,
    duration: float | None,
    on_progress: Callable[[float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Run ffmpeg with ``args`` (after :data:`COMMON_ARGS`) and wait for it.

    ``on_progress`` receives non-decreasing fractions in 0..1 computed from ffmpeg's ``out_time_us``
    and ``duration`` (the expected output duration in seconds; None reports only the final 1.0).
    ``should_stop`` is polled (rate-limited by :class:`StopCheck`) between progress lines and at
    least every quarter second; when it returns True the whole process group is killed and
    :class:`Cancelled` is raised. A non-zero exit raises :class:`CorruptMediaError` or
    :class:`MediaError` with ffmpeg's last error lines, minus file paths; a full disk raises OSError.
    """
    proc = subprocess.Popen(
        [ffmpeg_exe(), *COMMON_ARGS, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    stderr_tail: deque[str] = deque(maxlen=_STDERR_TAIL)
    readers = [
        _start_reader(proc.stdout, lines.put, lambda: lines.put(_EOF)),
        _start_reader(proc.stderr, stderr_tail.append, lambda: None),
    ]
    try:
        _follow(proc, lines, _Progress(duration, on_progress), StopCheck(should_stop, Cancelled))
    except BaseException:
        kill_process_group(proc)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    if proc.returncode != 0:
        raise _error(proc.returncode, stderr_tail, args)
    if on_progress is not None:
        on_progress(1.0)


def kill_process_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc``'s process group (it leads its own session) and reap the process."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


class _Progress:
    """Turns ``out_time_us`` values into non-decreasing fractions for ``on_progress``."""

    def __init__(self, duration: float | None, callback: Callable[[float], None] | None) -> None:
        self._duration = duration if duration and duration > 0 else None
        self._callback = callback
        self._last = 0.0

    def line(self, line: str) -> None:
        """Handle one ``key=value`` line of ``-progress`` output."""
        if self._callback is None or self._duration is None:
            return
        key, _, value = line.partition("=")
        if key != "out_time_us" or not value.lstrip("-").isdigit():
            return  # "N/A" before the first frame
        fraction = min(1.0, max(0.0, int(value) / 1e6 / self._duration))
        if fraction > self._last:
            self._last = fraction
            self._callback(fraction)


def _start_reader(
    stream: IO[bytes], sink: Callable[[str], None], on_eof: Callable[[], None]
) -> threading.Thread:
    """Read ``stream`` line by line in a daemon thread (so neither pipe can fill up and block ffmpeg)."""

    def read() -> None:
        try:
            for raw in stream:
                sink(raw.decode("utf-8", "replace").strip())
        finally:
            on_eof()

    thread = threading.Thread(target=read, name="ffmpeg-pipe", daemon=True)
    thread.start()
    return thread


def _follow(
    proc: subprocess.Popen[bytes], lines: queue.Queue[str | None], progress: _Progress, stop: StopCheck
) -> None:
    """Consume progress lines until ffmpeg closes stdout and exits, polling ``stop`` throughout."""
    while True:
        stop.check()
        try:
            line = lines.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if line is _EOF:
            break
        progress.line(line)
    while True:
        try:
            proc.wait(timeout=_POLL_S)
            return
        except subprocess.TimeoutExpired:
            stop.check()


def _error(returncode: int, stderr_tail: Iterable[str], args: list[str]) -> Exception:
    """The exception for a failed run: a user-facing MediaError, or OSError for a full disk."""
    tail = [line for line in stderr_tail if line]
    if any("No space left on device" in line for line in tail):
        return OSError(errno.ENOSPC, "No space left on device (ffmpeg)")
    summary = summarise(tail, args) or f"ffmpeg exited with status {returncode}"
    if _UNSUPPORTED.search(summary):
        return MediaError(f"The file uses a format or codec that is not supported: {summary}")
    return CorruptMediaError(f"The file is damaged or incomplete and cannot be processed: {summary}")


def summarise(lines: Iterable[str], args: list[str]) -> str:
    """The last few distinct error lines, without log prefixes or file paths, for an end user."""
    paths = sorted((a for a in args if os.sep in a and not a.startswith("-")), key=len, reverse=True)
    cleaned: list[str] = []
    for line in lines:
        text = _LOG_PREFIX.sub("", line.strip())
        for path in paths:
            text = text.replace(f"{path}: ", "").replace(path, "the file")
        text = _ABS_PATH.sub("the file", text).strip()
        if text and text not in cleaned:
            cleaned.append(text)
    summary = "; ".join(cleaned[-3:])
    return summary if len(summary) <= _MAX_SUMMARY else summary[: _MAX_SUMMARY - 3] + "..."
