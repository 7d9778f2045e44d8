"""Keeps the embedded worker process alive for ``vodscribe serve``: restarts it if it dies.

The worker must also die with the server, even when the server is killed with SIGKILL and has no
chance to stop it. Linux does that with ``PR_SET_PDEATHSIG``, which a process sets on itself; it used
to be set in ``preexec_fn``, which Python's documentation warns can deadlock in a threaded parent
(the server is). Instead the supervisor names itself in ``VODSCRIBE_DIE_WITH_PARENT`` and the
worker sets the signal as it starts (:func:`die_with_parent`, called by ``vodscribe.worker.app``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading

log = logging.getLogger(__name__)

PARENT_ENV = "VODSCRIBE_DIE_WITH_PARENT"
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the worker: get SIGTERM when the process in ``VODSCRIBE_DIE_WITH_PARENT`` dies (Linux).

    If it already died before this ran (the window between fork and here), stop at once."""
    parent = os.environ.pop(PARENT_ENV, "")
    if not parent or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)


class WorkerSupervisor(threading.Thread):
    """Runs ``command`` in its own process group and restarts it whenever it exits unexpectedly.

    A task whose worker died is picked up again by the reaper once its heartbeat goes stale."""

    def __init__(self, command: list[str], restart_delay: float = 1.0) -> None:
        super().__init__(name="vodscribe-worker-supervisor", daemon=True)
        self.command = command
        self.restart_delay = restart_delay
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self.proc = subprocess.Popen(self.command, start_new_session=True, env=env)
            log.info("embedded worker started (pid %d)", self.proc.pid)
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            log.error("embedded worker exited with %s; restarting", code)
            self._stopping.wait(self.restart_delay)

    def stop(self, timeout: float = 20.0) -> None:
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
