"""Stopping the processes tests start: each in its own session (``start_new_session=True``), so a
signal to its group reaches what it started too (a worker's pool, ffmpeg, Chromium's helpers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def stop_group(proc: subprocess.Popen[bytes], *, grace_s: float = 30) -> None:
    """SIGTERM to the process group, then SIGKILL if it has not exited within ``grace_s``; waits for
    the process (a group that is already gone is fine)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
