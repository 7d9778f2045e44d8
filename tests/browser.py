"""Headless Chromium for browser tests (Debian's ``chromium`` package: ``apt-get install -y chromium``).

Two ways in:

* :func:`dump_dom` — ``chromium --headless --virtual-time-budget=N --dump-dom URL``: the DOM once the
  page's virtual-time budget is spent. Good for pages that settle by themselves, but virtual time
  does not wait for media: the budget runs out (in under a second of real time) right after the
  manifest loads, long before a video plays to its first cue.
* :func:`chromium_page` — Chromium with ``--remote-debugging-port`` driven over the Chrome DevTools
  Protocol (the ``websockets`` package): navigate, wait in real time until a JS expression holds,
  evaluate JS, read the console. The embed player tests use this.

:func:`require_chromium` skips a test when Chromium is not installed, and fails it instead when
``VODSCRIBE_TEST_REQUIRE_SERVICES=1`` (CI).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.processes import stop_group
from tests.waiting import eventually

REQUIRE_SERVICES = os.environ.get("VODSCRIBE_TEST_REQUIRE_SERVICES") == "1"
INSTALL_HINT = "apt-get install -y --no-install-recommends chromium"

# --no-sandbox: Chromium's sandbox refuses to run as root (CI containers).
# --disable-dev-shm-usage: containers often have a 64 MB /dev/shm.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
)


def find_chromium() -> str | None:
    """Path of the Chromium binary (``$CHROMIUM``, ``chromium`` on PATH, ``/usr/bin/chromium``), or None."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def require_chromium() -> str:
    """The Chromium binary; skips the test without one (fails it when CI requires services)."""
    path = find_chromium()
    if path is None:
        msg = f"headless Chromium not installed ({INSTALL_HINT})"
        if REQUIRE_SERVICES:
            pytest.fail(msg + " but VODSCRIBE_TEST_REQUIRE_SERVICES=1")
        pytest.skip(msg)
    return path


def dump_dom(url: str, *, budget_ms: int = 15000, timeout_s: float | None = None) -> str:
    """The serialized DOM of ``url`` after ``budget_ms`` of virtual time (``--dump-dom``)."""
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="vodscribe-chromium-") as profile:
        args = [
            chromium, *BASE_FLAGS, f"--user-data-dir={profile}",
            f"--virtual-time-budget={budget_ms}", "--dump-dom", url,
        ]  # fmt: skip
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout_s or budget_ms / 1000 + 30)
        except subprocess.TimeoutExpired:
            stop_group(proc, grace_s=5)
            raise
        finally:
            stop_group(proc, grace_s=5)
    if proc.returncode != 0:
        tail = err.decode(errors="replace")[-2000:]
        raise RuntimeError(f"chromium --dump-dom exited {proc.returncode}: {tail}")
    return out.decode()


class CdpError(RuntimeError):
    pass


class _Connection:
    """The browser-level DevTools websocket; commands for a tab carry its flattened ``sessionId``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []  # events that arrived while waiting for answers

    def call(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
        timeout: float = 10,
    ) -> dict[str, Any]:  # fmt: skip
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"CDP {method}: no answer in {timeout} s")
            answer = json.loads(self.ws.recv(timeout=remaining))
            if answer.get("id") == msg_id:
                if "error" in answer:
                    raise CdpError(f"CDP {method}: {answer['error']}")
                return dict(answer.get("result", {}))
            if "method" in answer:
                self.events.append(answer)

    def wait_event(self, method: str, session: str, *, timeout: float = 15) -> dict[str, Any]:
        """The first queued-or-incoming event ``method`` of ``session`` (taken off the queue)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["method"] == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"CDP event {method}: not in {timeout} s")
            with contextlib.suppress(TimeoutError):
                self.events.append(json.loads(self.ws.recv(timeout=remaining)))


class Page:
    """One tab of a headless Chromium, driven over the DevTools Protocol."""

    def __init__(self, conn: _Connection, session_id: str) -> None:
        self._conn = conn
        self._session = session_id
        self._console: list[str] = []
        self._requests: list[dict[str, Any]] = []

    @property
    def console(self) -> list[str]:
        """Console messages, uncaught exceptions and browser log entries (CSP violations...) so far."""
        events, self._conn.events[:] = list(self._conn.events), []
        for event in events:
            if event.get("sessionId") == self._session:
                self._record(event)
        return self._console

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Requests the page sent so far (``Network.requestWillBeSent``'s ``request``), once
        :meth:`record_requests` is on."""
        _ = self.console  # files the queued events
        return self._requests

    def record_requests(self) -> None:
        self.send("Network.enable")

    def _record(self, msg: dict[str, Any]) -> None:
        method, params = msg.get("method"), msg.get("params", {})
        if method == "Network.requestWillBeSent":
            self._requests.append(params.get("request", {}))
        elif method == "Runtime.consoleAPICalled":
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", []))
            self._console.append(f"console.{params.get('type')}: {args}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text")
            self._console.append(f"exception: {text}")
        elif method == "Log.entryAdded":
            entry = params.get("entry", {})
            line = f"log.{entry.get('level')}: {entry.get('text')} {entry.get('url', '')}"
            self._console.append(line.rstrip())

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 10
    ) -> dict[str, Any]:
        return self._conn.call(method, params, session=self._session, timeout=timeout)

    def evaluate(self, expression: str, *, timeout: float = 10) -> Any:
        """The JSON value of a JS expression (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CdpError(details.get("exception", {}).get("description") or details.get("text"))
        return result.get("result", {}).get("value")

    def navigate(self, url: str, *, timeout: float = 15) -> None:
        """Open ``url`` and wait until its DOM is parsed (its synchronous scripts have run)."""
        _ = self.console  # file the events so far (a previous page's DOMContentLoaded among them)
        result = self.send("Page.navigate", {"url": url}, timeout=timeout)
        if result.get("errorText"):
            raise CdpError(f"navigate {url}: {result['errorText']}")
        self._conn.wait_event("Page.domContentEventFired", self._session, timeout=timeout)

    def wait_for(self, expression: str, *, timeout: float = 15, interval: float = 0.05) -> Any:
        """Poll ``expression`` until it is truthy; its value. Fails with the page's state and console."""
        try:
            return eventually(
                lambda: self.evaluate(expression), timeout=timeout, interval=interval, what=expression
            )
        except AssertionError as exc:
            state = self.evaluate("document.body ? document.body.dataset.state : null")
            raise AssertionError(
                f"timed out after {timeout} s waiting for {expression!r}; body state={state!r}; "
                "console:\n" + "\n".join(self.console[-30:])
            ) from exc

    def dom(self) -> str:
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page (beyond the window's height) at ``path``."""
        size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        clip = {"x": 0, "y": 0, "width": size[0], "height": min(size[1], 8000), "scale": 1}
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            timeout=30,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def viewport(self, width: int, height: int, *, mobile: bool = False) -> None:
        """Lay the page out as on a screen of ``width`` x ``height`` CSS pixels."""
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose ``paths`` in the file input ``selector``, as a user does in the file dialog."""
        root = self.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise CdpError(f"no element matches {selector!r}")
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(p) for p in paths]})

    def drop_files(self, selector: str, paths: list[Path]) -> None:
        """Drag ``paths`` from outside the browser and drop them on the middle of ``selector``."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        data = {"items": [], "files": [str(p) for p in paths], "dragOperationsMask": 1}
        for kind in ("dragEnter", "dragOver", "drop"):
            self.send("Input.dispatchDragEvent", {"type": kind, "x": box[0], "y": box[1], "data": data})

    def type_text(self, text: str) -> None:
        """Type into the focused element."""
        self.send("Input.insertText", {"text": text})

    def press(self, key: str, code: str, key_code: int, *, ctrl: bool = False, shift: bool = False) -> None:
        """Press and release one key (``"Enter", "Enter", 13``; ``"s", "KeyS", 83, ctrl=True``)."""
        modifiers = (2 if ctrl else 0) | (8 if shift else 0)
        common = {"key": key, "code": code, "windowsVirtualKeyCode": key_code, "modifiers": modifiers}
        self.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", **common})
        if key == "Enter":
            self.send("Input.dispatchKeyEvent", {"type": "char", "text": "\r", **common})
        self.send("Input.dispatchKeyEvent", {"type": "keyUp", **common})

    def allow_downloads(self, folder: Path) -> None:
        """Save the page's downloads into ``folder``."""
        self._conn.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)})


def _devtools_endpoint(profile: Path, proc: subprocess.Popen[bytes], timeout: float) -> str:
    """ws:// URL of the browser, from the DevToolsActivePort file Chromium writes for port 0."""
    port_file = profile / "DevToolsActivePort"

    def endpoint() -> str | None:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited {proc.returncode} before DevTools came up")
        with contextlib.suppress(FileNotFoundError, ValueError):
            lines = port_file.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
        return None

    try:
        return eventually(endpoint, timeout=timeout, interval=0.05, what="chromium DevTools")
    except AssertionError as exc:
        raise RuntimeError(f"chromium DevTools did not come up in {timeout} s") from exc


@contextlib.contextmanager
def chromium_page(*, startup_timeout: float = 20) -> Iterator[Page]:
    """A fresh headless Chromium (own temp profile) with one blank tab; closed afterwards."""
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="vodscribe-chromium-") as tmp:
        profile = Path(tmp)
        args = [
            chromium, *BASE_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank",
        ]  # fmt: skip
        proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )  # fmt: skip
        try:
            endpoint = _devtools_endpoint(profile, proc, startup_timeout)
            with connect(endpoint, max_size=None, open_timeout=startup_timeout) as ws:
                conn = _Connection(ws)
                target = conn.call("Target.createTarget", {"url": "about:blank"})["targetId"]
                attached = conn.call("Target.attachToTarget", {"targetId": target, "flatten": True})
                page = Page(conn, attached["sessionId"])
                for domain in ("Page", "Runtime", "Log"):
                    page.send(f"{domain}.enable")
                yield page
                with contextlib.suppress(Exception):
                    conn.call("Browser.close", timeout=5)
        finally:
            stop_group(proc, grace_s=5)
