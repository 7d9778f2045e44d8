"""Keeps the embedded worker process alive for ``vodscribe serve``: restarts it if it dies."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading

log = logging.getLogger(__name__)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, even by SIGKILL (Linux)."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


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
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                self.proc = subprocess.Popen(
                    self.command, start_new_session=True, preexec_fn=_die_with_parent
                )
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
