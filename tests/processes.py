"""Starting and stopping the processes tests start: each in its own session (``start_new_session=True``), so a
signal to its group reaches what it started too (a worker's pool, ffmpeg, Chromium's helpers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.waiting import eventually


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


@contextmanager
def serving(
    command: list[str], log_path: Path, answers: Callable[[], bool], *, timeout_s: float, what: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A server the test starts: ``command`` in its own session, logging to ``log_path``, handed out
    once ``answers()`` (an HTTP error counts as not yet; the process ending fails at once, with its
    log) and always stopped with its group."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: the process exited:\n" + log_path.read_text(errors="replace"))
            try:
                return answers()
            except httpx.HTTPError:
                return False

        try:
            eventually(up, timeout=timeout_s, interval=0.2, what=what)
            yield proc
        finally:
            stop_group(proc)
