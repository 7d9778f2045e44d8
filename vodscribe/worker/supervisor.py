"""Keeps a Celery worker process alive (for ``vodscribe serve`` and ``vodscribe worker``): restarts
it if it dies, waiting longer each time it dies soon after starting (up to ``MAX_DELAY_S``).

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
import time

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


#: The longest wait before a restart, and how long a worker must have run for the wait to start over.
MAX_DELAY_S = 30.0
STEADY_S = 60.0


class WorkerSupervisor(threading.Thread):
    """Runs ``command`` in its own process group and restarts it whenever it exits unexpectedly.

    A task whose worker died is picked up again by the reaper once its heartbeat goes stale."""

    def __init__(self, command: list[str], restart_delay: float = 1.0, own_group: bool = True) -> None:
        """``own_group``: the worker runs in a process group of its own (``serve``'s embedded one);
        else in the supervisor's, so that signalling the group reaches both (``vodscribe worker``)."""
        super().__init__(name="vodscribe-worker-supervisor", daemon=True)
        self.own_group = own_group
        self.command = command
        self.restart_delay = restart_delay
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        env = {**os.environ, PARENT_ENV: str(os.getpid())}
        delay = self.restart_delay
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self.proc = subprocess.Popen(self.command, start_new_session=self.own_group, env=env)
            started = time.monotonic()
            log.info("worker started (pid %d)", self.proc.pid)
            code = self.proc.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            delay = self.restart_delay if time.monotonic() - started > STEADY_S else delay
            log.error("worker exited with %s; restarting in %g s", code, delay)
            self._stopping.wait(delay)
            delay = min(MAX_DELAY_S, delay * 2)

    def stop(self, timeout: float | None = 20.0) -> None:
        """SIGTERM to the worker's process group; SIGKILL after ``timeout`` (None: wait for it)."""
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        self._signal(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(proc, signal.SIGKILL)
            proc.wait()

    def _signal(self, proc: subprocess.Popen[bytes], signum: int) -> None:
        if self.own_group:
            os.killpg(proc.pid, signum)
        else:  # Celery passes it on to its pool
            proc.send_signal(signum)
