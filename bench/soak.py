"""Soak benchmark with faults: many clients for minutes while workers, Redis and PostgreSQL are killed.

    python bench/soak.py [--minutes 20] [--clients 20] [--seed 1] [--out FILE] [--keep] [--data DIR]

Not a CI test: it runs for ``--minutes`` (then up to ``--drain`` seconds more) and keeps 2 CPU cores
busy; ``--minutes 3`` exercises every fault once (about 6 minutes in all). Run it as root from the
repository root in the project's virtual environment (``runuser`` starts PostgreSQL as postgres).
Everything it starts listens on 127.0.0.1 only, and it stops all of it on exit (Ctrl+C too):

- its own PostgreSQL 15 (``initdb`` in a temp dir, run as the ``postgres`` user, trust auth) and
  Redis (no persistence), so they can be restarted without touching the machine's shared ones; on
  ports 55432 and 56379 unless those are in the kernel's ephemeral range (then 15432 and 16379, or
  the next free ones), so that no outgoing connection takes the port while the server is down;
- two ``vodscribe serve --no-worker`` processes sharing one data directory (the clients alternate
  between them), two ``vodscribe worker -Q asr``, one ``-Q media`` and one ``-Q webhooks --pool
  threads`` (deliveries need a worker of their own);
- a media server (the test data's real speech clips, as audio and muxed into small MP4s) and a
  webhook receiver (some clients' endpoints slow, failing at times, or always down).

``--clients`` threads, each with its own API key and webhook, submit (one item at a time, with a
pause between) a mix of: AI transcription tasks by URL, AI tasks that translate, videos by URL (some
with ``auto_translate_subtitles_language``, some without AI subtitles), videos uploaded with TUS
(some abandoned half way, to be swept), translations asked for on their ready videos (``POST
.../subtitles``), and a few bad items (a URL that answers 404, an upload that is an HTML page).
Meanwhile a chaos loop kills a random worker with ``kill -9`` every minute (and starts a new one),
restarts Redis once, restarts PostgreSQL once, fills the disk to ``UPLOAD_MIN_FREE_BYTES`` for a
while once (the setting is put just below the free space at start, so nothing real fills up:
uploads created then must be refused with 507), and makes the media server answer 500 for a while.
The one-off faults are spread over the run (their times scale with ``--minutes``).

When ``--minutes`` are over, the clients stop submitting and wait for what they submitted; then the
soak waits (at most ``--drain`` seconds) until the database and the disk are quiet, and checks:

- every AI task and video of the clients ended: SUCCESS, or FAILURE / ``error`` / ``empty`` with a
  non-empty reason (uploads refused with 507 and deliberately abandoned uploads are counted apart);
- none ran twice: no id handed out twice, one ``ai_task`` event per task and one ``ready`` event
  per ready video in the webhook outbox, attempts within ``MAX_ATTEMPTS``, no final status that the
  client saw change afterwards (retries after a kill are reported, and whether a killed worker held
  the job);
- every AI subtitle attached exactly once (per task that asked for it; one "AI-generated" track per
  video) and listed once in the video's HLS master playlist;
- every webhook delivery delivered (the receiver saw its id answered 2xx) or failed with its
  attempts recorded (all ``WEBHOOK_MAX_ATTEMPTS`` of them); none left pending; signatures valid; an
  always-OK receiver got everything, an always-down one nothing; every ended task and video has
  its event;
- no file left behind: no upload folder in ``DATA_DIR/uploads`` (abandoned ones swept after
  ``UPLOAD_EXPIRY_S``), no ``source/`` (kept origin or upload) in the media store, nothing in
  ``DATA_DIR/work``, no temporary files of atomic writes, no folder of a deleted video;
- the disk fill: a probe upload is refused with 507 during it and accepted after, and no 507 came
  while the disk had room;
- no 5xx (or no answer) outside the Redis/PostgreSQL outages (from 2 s before to 15 s after), no
  service process that died by itself (it is started again and reported), no client thread crashed.

Prints one JSON document (also written to ``--out``): the settings, the chaos events, counts, API
latency (p50/p90/p99/max of every request the clients made while submitting, by route, and outside
the outages), non-2xx answers by status, ERROR lines and tracebacks per process log, and
``invariants`` with examples of what failed. Progress goes to stderr. The exit
status is 1 when an invariant failed. ``--keep`` keeps the temp dir (logs of every process, the
databases' files) for inspection.

The clips come from the test-data folder ``--data`` (default ``shared/testdata`` beside the repository
checkout, else the copies in ``tests/data``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.load import CLIPS, DEFAULT_TESTDATA, REPO_COPIES, find_clip  # noqa: E402
from tests.conftest import free_port, llm_model_file, reachable  # noqa: E402
from vodscribe.db.session import migrate, session_scope  # noqa: E402
from vodscribe.schemas.ai_tasks import TaskData, TranscriptionResult  # noqa: E402
from vodscribe.services.clients import create_client  # noqa: E402
from vodscribe.services.subtitles import ai_subtitle_name  # noqa: E402
from vodscribe.storage.uploads import ID as UPLOAD_ID  # noqa: E402  (the folders of TUS uploads)
from vodscribe.worker.webhook_delivery import sign  # noqa: E402

#: Translation target for a clip in each language (another language the bundled LLM knows).
TRANSLATE_TO = {"eng": "ger", "ger": "eng", "fre": "eng", "spa": "eng"}
#: More targets for translations asked for on a ready video.
EXTRA_TARGETS = ("ger", "fre", "ita", "spa", "eng")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
FINAL_TASK = ("SUCCESS", "FAILURE", "REVOKED")
#: MP4 variants per clip (same speech, different bytes: some recognitions are reused, some not).
VARIANTS = 4
CHUNK = 64 * 1024  # TUS PATCH size
GIB = 1024**3
#: Answers after which a client sends the same request again (an outage): not 507, which is final.
RETRIABLE = frozenset({429, 500, 502, 503, 504})
#: What the clients submit, and how often (weights).
MIX = {
    "task": 26,
    "task_translate": 9,
    "video_url": 22,
    "upload": 18,
    "upload_abandoned": 3,
    "video_translate": 14,
    "bad_url": 4,
    "bad_upload": 4,
}
#: Service settings for the soak (short enough that recovery happens within minutes).
SETTINGS = {
    "VODSCRIBE_HEARTBEAT_S": "2",
    "VODSCRIBE_STALE_AFTER_S": "20",
    "VODSCRIBE_REDISPATCH_AFTER_S": "45",
    "VODSCRIBE_MAX_ATTEMPTS": "3",
    "VODSCRIBE_WEBHOOK_TIMEOUT_S": "4",
    "VODSCRIBE_WEBHOOK_BACKOFF_S": "2",
    "VODSCRIBE_WEBHOOK_BACKOFF_MAX_S": "30",
    "VODSCRIBE_WEBHOOK_MAX_ATTEMPTS": "4",
    "VODSCRIBE_WEBHOOK_REDISPATCH_AFTER_S": "20",
    "VODSCRIBE_UPLOAD_EXPIRY_S": "60",
    "VODSCRIBE_ASR_CPU_THREADS": "1",
    "VODSCRIBE_LLM_THREADS": "1",
    "VODSCRIBE_ALLOW_PRIVATE_URLS": "true",
    "VODSCRIBE_AUTO_TRANSCRIBE_BY_DEFAULT": "true",
}
#: Free space left below the disk's free space at start before uploads are refused.
DISK_MARGIN = 2 * GIB
#: Worker slots: name -> (queues, extra arguments).
WORKERS = {
    "asr-1": ("asr", ("--pool", "prefork", "--concurrency", "1")),
    "asr-2": ("asr", ("--pool", "prefork", "--concurrency", "1")),
    "media-1": ("media", ("--pool", "prefork", "--concurrency", "1")),
    "webhooks-1": ("webhooks", ("--pool", "threads", "--concurrency", "4")),
}


def say(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- PostgreSQL and Redis of our own --------------------------------------------------------------------
def _port(preferred: int) -> int:
    """A free port for a server that the chaos loop restarts, outside the kernel's ephemeral range:
    otherwise an outgoing connection may take it as its local port while the server is down."""
    try:
        low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    port = preferred if not low <= preferred <= high else 10000 + preferred % 10000
    for candidate in range(port, port + 1000):
        if low <= candidate <= high or reachable(candidate):
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
        return candidate
    return free_port()


class Postgres:
    """A throwaway cluster in ``root/pg`` (owned by postgres), started with ``pg_ctl``."""

    def __init__(self, root: Path, port: int) -> None:
        self.dir = root / "pg"
        self.data = self.dir / "data"
        self.port = port
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/vodscribe"
        self.dir.mkdir()
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip

    def _as_postgres(self, *cmd: str, check: bool = True) -> int:
        with (self.dir.parent / "pg_ctl.log").open("ab") as log:
            done = subprocess.run(
                ["runuser", "-u", "postgres", "--", *cmd], cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, check=False,
            )  # fmt: skip
        if check and done.returncode:
            raise RuntimeError(f"{cmd[0]} failed ({done.returncode}); see {self.dir.parent / 'pg_ctl.log'}")
        return done.returncode

    def start(self, tries: int = 5) -> None:
        for left in reversed(range(tries)):
            try:
                return self._start()
            except RuntimeError:
                if not left:
                    raise
                time.sleep(2)

    def _start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=400 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "postgres.log"), "-w",
            "-t", "60", "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", check=False
        )

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def create_database(self) -> None:
        admin = sa.create_engine(
            f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as c:
            c.execute(sa.text("CREATE DATABASE vodscribe"))
        admin.dispose()


class Redis:
    def __init__(self, root: Path, port: int) -> None:
        self.dir = root / "redis"
        self.dir.mkdir()
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, tries: int = 5) -> None:
        for left in reversed(range(tries)):
            try:
                return self._start()
            except RuntimeError:
                self.stop()
                if not left:
                    raise
                time.sleep(2)

    def _start(self) -> None:
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
             "no", "--dir", str(self.dir), "--protected-mode", "yes"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 30
        while not reachable(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; see {self.dir / 'redis.log'}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# --- the media server and the webhook receiver -------------------------------------------------------------
class MediaServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.failing = False
        self.served = Counter[int]()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _MediaHandler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _MediaHandler(SimpleHTTPRequestHandler):
    server: MediaServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(args[2].folder), **kwargs)

    def log_message(self, *args: object) -> None:
        pass

    def send_response(self, code: int, message: str | None = None) -> None:
        with self.server.lock:
            self.server.served[code] += 1
        super().send_response(code, message)

    def do_GET(self) -> None:
        if self.server.failing:
            self.send_error(500, "Internal Server Error (soak fault)")
            return
        super().do_GET()

    def do_HEAD(self) -> None:
        if self.server.failing:
            self.send_error(500, "Internal Server Error (soak fault)")
            return
        super().do_HEAD()


@dataclass
class Received:
    client: int
    event: str
    answered: int  # the status we answered (0: the sender hung up first)
    at: float
    payload: dict[str, Any]


class Receiver(ThreadingHTTPServer):
    """``POST /hook/<client>``: records every delivery by its id, checks the signature, and answers as
    the client's mode says: ``ok``; ``slow`` (0.5-7 s, beyond the service's 4 s timeout at times);
    ``flaky`` (500 for 40 %); ``down`` (503 always: every delivery must end failed)."""

    daemon_threads = True

    def __init__(self, modes: dict[int, str], seed: int) -> None:
        self.modes = modes
        self.secrets: dict[int, str] = {}
        self.seen: dict[str, list[Received]] = defaultdict(list)
        self.bad_signatures: list[str] = []
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        super().__init__(("127.0.0.1", 0), _HookHandler)

    def url(self, client: int) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook/{client}"

    def chance(self) -> float:
        with self.lock:
            return self.rng.random()


class _HookHandler(BaseHTTPRequestHandler):
    server: Receiver

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        receiver = self.server
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            client = int(self.path.rsplit("/", 1)[1])
        except ValueError:
            client = -1
        delivery = self.headers.get("x-vodscribe-delivery", "")
        timestamp = self.headers.get("x-vodscribe-timestamp", "0")
        secret = receiver.secrets.get(client)
        if secret is None or self.headers.get("x-vodscribe-signature") != sign(secret, int(timestamp), body):
            with receiver.lock:
                receiver.bad_signatures.append(delivery)
        mode = receiver.modes.get(client, "ok")
        code = 200
        if mode == "down":
            code = 503
        elif mode == "flaky" and receiver.chance() < 0.4:
            code = 500
        elif mode == "slow":
            time.sleep(0.5 + 6.5 * receiver.chance())
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        record = Received(client, self.headers.get("x-vodscribe-event", ""), code, time.monotonic(), payload)
        try:
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
        except OSError:  # the sender gave up waiting
            record.answered = 0
        with receiver.lock:
            receiver.seen[delivery].append(record)


# --- the service's processes --------------------------------------------------------------------------------
@dataclass
class Proc:
    slot: str
    popen: subprocess.Popen[bytes]
    log: Path
    started: float
    killed: bool = False  # by the chaos loop (or found dead and replaced)


def _group_pids(pgid: int) -> list[int]:
    """Every process in process group ``pgid`` (a worker: its main process and its pool's children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            found.append(int(entry.name))
    return sorted(found)


def _stop_group(popen: subprocess.Popen[bytes], *, hard: bool = False) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL if hard else signal.SIGTERM)
    try:
        popen.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()
    with contextlib.suppress(ProcessLookupError):  # children the main process left behind
        os.killpg(popen.pid, signal.SIGKILL)


class Services:
    """Two API processes and the workers, with their logs in ``root/logs``."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.logs = root / "logs"
        self.logs.mkdir()
        self.apis: dict[str, Proc] = {}
        self.api_urls: list[str] = []
        self.ports: dict[str, int] = {}
        self.workers: dict[str, Proc] = {}
        self.lock = threading.RLock()
        self.counter = Counter[str]()

    def _spawn(self, slot: str, args: list[str], env: dict[str, str]) -> Proc:
        self.counter[slot] += 1
        log = self.logs / f"{slot}.{self.counter[slot]}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "vodscribe.cli", *args], env=env, cwd=self.root, stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
        return Proc(slot, popen, log, time.monotonic())

    def start_api(self, slot: str) -> Proc:
        """``vodscribe serve --no-worker`` on its port (the same one again when it is restarted)."""
        port = self.ports.setdefault(slot, free_port())
        env = {**self.env, "VODSCRIBE_PORT": str(port)}
        proc = self._spawn(slot, ["serve", "--no-worker", "--port", str(port)], env)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{slot} exited at start:\n{proc.log.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{slot} did not answer /health:\n{proc.log.read_text()[-3000:]}")
            time.sleep(0.3)
        with self.lock:
            self.apis[slot] = proc
            if url not in self.api_urls:
                self.api_urls.append(url)
        return proc

    def start_worker(self, slot: str) -> Proc:
        queues, extra = WORKERS[slot]
        proc = self._spawn(slot, ["worker", "-Q", queues, *extra], self.env)
        with self.lock:
            self.workers[slot] = proc
        return proc

    def stop_all(self) -> None:
        with self.lock:
            procs = [*self.workers.values(), *self.apis.values()]
        for proc in procs:
            if proc.popen.poll() is None:
                _stop_group(proc.popen)


# --- clients ---------------------------------------------------------------------------------------------
@dataclass
class Sample:
    at: float  # seconds since the run started
    route: str
    status: int  # 0: no answer (transport error)
    seconds: float


@dataclass
class Item:
    kind: str
    client: int
    number: int
    submitted_at: float
    clip: str = ""
    language: str = ""
    targets: list[str] = field(default_factory=list)
    transcribe: bool = True
    task_ids: list[str] = field(default_factory=list)
    video_id: int | None = None
    state: str = "new"  # active, final, refused, abandoned, rejected
    outcome: str = ""
    final: dict[str, Any] = field(default_factory=dict)  # task id or "video" -> final status seen
    ready_at: float | None = None
    note: str = ""
    deleted: bool = False  # the client deleted its video (an upload refused or failed)
    refused: tuple[float, int, int] | None = None  # 507: (run seconds, free bytes then, upload length)


class Client:
    """One API client (its own key and webhook): submits an item, follows it to its end, pauses,
    submits the next, until ``stop_at``; then follows what it has until ``drain_until``."""

    def __init__(self, soak: Soak, index: int, key: str) -> None:
        self.soak = soak
        self.index = index
        self.rng = random.Random(soak.seed * 1000 + index)
        self.apis = [
            httpx.Client(base_url=u, headers={"Authorization": f"APIKey {key}"}, timeout=30)
            for u in soak.services.api_urls
        ]
        self.tus = httpx.Client(timeout=30)
        self.turn = index % len(self.apis)
        self.samples: list[Sample] = []
        self.items: list[Item] = []
        self.ready_videos: list[Item] = []
        self.errors: list[str] = []

    # -- HTTP with every request recorded --
    def request(
        self, method: str, url: str, route: str, *, api: int | None = None, **kw: Any
    ) -> httpx.Response | None:
        if url.startswith("http"):
            http = self.tus
        else:
            if api is None:
                api = self.turn
                self.turn = (self.turn + 1) % len(self.apis)
            http = self.apis[api]
        started = time.monotonic()
        try:
            response: httpx.Response | None = http.request(method, url, **kw)
        except httpx.HTTPError:
            response = None
        took = time.monotonic() - started
        self.samples.append(
            Sample(started - self.soak.t0, route, response.status_code if response else 0, took)
        )
        return response

    def call(
        self, method: str, url: str, route: str, *, patience: float = 180, **kw: Any
    ) -> httpx.Response | None:
        """The request, sent again after a 429, a 5xx or no answer until ``patience`` seconds pass."""
        deadline = time.monotonic() + patience
        while True:
            response = self.request(method, url, route, **kw)
            if response is not None and response.status_code not in RETRIABLE:
                return response
            if time.monotonic() > deadline or self.soak.aborted.is_set():
                return response
            wait = 2.0
            if response is not None and response.status_code == 429:
                wait = float(response.headers.get("retry-after", "1"))
            time.sleep(wait * (0.5 + self.rng.random()))

    # -- the loop --
    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # a bug of the soak: reported, the other clients go on
            self.errors.append(f"{type(exc).__name__}: {exc}")
            say(f"client {self.index} crashed: {exc!r}")

    def _run(self) -> None:
        soak = self.soak
        self._set_webhook()
        time.sleep(self.rng.uniform(0, 5))
        active: Item | None = None
        next_at = 0.0
        while not soak.aborted.is_set():
            now = time.monotonic()
            if active is None:
                if now >= soak.stop_at:
                    break
                if now >= next_at:
                    item = self._submit()
                    if item.state == "active":
                        active = item
                    else:
                        next_at = time.monotonic() + self.rng.uniform(1, 4)
                    continue
            else:
                if self._follow(active):
                    active = None
                    next_at = time.monotonic() + self.rng.uniform(2, 8)
                    continue
                if now > soak.drain_until:
                    active.note = "still unfinished when the clients stopped waiting"
                    break
            time.sleep(1.0 + self.rng.random())

    def _set_webhook(self) -> None:
        r = self.call(
            "PUT",
            "/streaming/webhook",
            "PUT /streaming/webhook",
            json={"url": self.soak.receiver.url(self.index)},
        )
        if r is None or r.status_code != 200:
            raise RuntimeError(f"PUT /streaming/webhook answered {r.status_code if r else 'nothing'}")
        secret = r.json().get("secret")
        if secret:
            self.soak.receiver.secrets[self.index] = secret

    def _choose(self) -> str:
        kinds = list(MIX)
        kind = self.rng.choices(kinds, weights=[MIX[k] for k in kinds])[0]
        if kind == "video_translate" and not self._translatable():
            kind = "task"
        return kind

    def _translatable(self) -> list[tuple[Item, str]]:
        options = []
        for video in self.ready_videos:
            for target in EXTRA_TARGETS:
                if target != video.language and target not in video.targets:
                    options.append((video, target))
        return options

    def _submit(self) -> Item:
        kind = self._choose()
        clip = self.rng.choice(list(self.soak.clips))
        item = Item(kind, self.index, len(self.items) + 1, time.monotonic() - self.soak.t0, clip=clip)
        item.language = CLIPS[self.soak.clips[clip]]
        self.items.append(item)
        tag = f"soak-{self.index:02d}-{item.number}"
        if kind in ("task", "task_translate", "bad_url"):
            media = self.soak.media.base_url
            if kind == "bad_url":
                url = f"{media}/missing/{tag}.wav"
            elif self.rng.random() < 0.5:
                url = f"{media}/{clip}"
            else:
                url = f"{media}/mp4/{Path(clip).stem}.{self.rng.randrange(VARIANTS)}.mp4"
            body: dict[str, Any] = {"task_name": "transcription", "url": url, "client_user_id": tag}
            if kind == "task_translate":
                item.targets = [TRANSLATE_TO[item.language]]
                body["subtitles_language"] = item.targets[0]
            r = self.call("POST", "/streaming/ai/tasks", "POST /streaming/ai/tasks", json=body)
            if r is None or r.status_code != 201:
                return self._rejected(item, r)
            item.task_ids = [r.json()["task_id"]]
            item.state = "active"
        elif kind == "video_url":
            self._plan(item)
            url = f"{self.soak.media.base_url}/mp4/{Path(clip).stem}.{self.rng.randrange(VARIANTS)}.mp4"
            r = self.call(
                "POST",
                "/streaming/videos",
                "POST /streaming/videos",
                json={"video": {**self._fields(item, tag), "origin_url": url}},
            )
            if r is None or r.status_code not in (200, 201):
                return self._rejected(item, r)
            item.video_id = int(r.json()["id"])
            item.state = "active"
        elif kind in ("upload", "upload_abandoned", "bad_upload"):
            self._plan(item)
            self._upload(item, tag)
        elif kind == "video_translate":
            video, target = self.rng.choice(self._translatable())
            video.targets.append(target)
            item.video_id, item.targets, item.language = video.video_id, [target], video.language
            body = {"auto_transcribe_audio_language": "auto", "auto_translate_subtitles_language": target}
            r = self.call(
                "POST",
                f"/streaming/videos/{video.video_id}/subtitles",
                "POST /streaming/videos/{id}/subtitles",
                json=body,
            )
            if r is None or r.status_code != 200:
                return self._rejected(item, r)
            item.task_ids = list(r.json().get("ai_task_ids") or [])
            item.state = "active" if item.task_ids else "final"
            item.outcome = "" if item.task_ids else f"no task: {r.text[:200]}"
        return item

    def _rejected(self, item: Item, r: httpx.Response | None) -> Item:
        item.state = "rejected"
        item.outcome = f"{r.status_code}: {r.text[:200]}" if r is not None else "no answer"
        return item

    def _plan(self, item: Item) -> None:
        """AI subtitles for a video: none (15 %), transcription, or transcription + a translation."""
        chance = self.rng.random()
        item.transcribe = chance >= 0.15
        if chance >= 0.7:
            item.targets = [TRANSLATE_TO[item.language]]

    def _fields(self, item: Item, tag: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "name": tag,
            "auto_transcribe_audio_language": "auto" if item.transcribe else "disable",
        }
        if item.targets:
            fields["auto_translate_subtitles_language"] = ",".join(item.targets)
        return fields

    # -- TUS --
    def _upload(self, item: Item, tag: str) -> None:
        r = self.call(
            "POST", "/streaming/videos", "POST /streaming/videos", json={"video": self._fields(item, tag)}
        )
        if r is None or r.status_code not in (200, 201):
            self._rejected(item, r)
            return
        item.video_id = int(r.json()["id"])
        if item.kind == "bad_upload":
            data = b"<!doctype html><html><head><title>not a video</title></head><body>" + b"x" * 5000
        else:
            data = (
                self.soak.media.folder / "mp4" / f"{Path(item.clip).stem}.{self.rng.randrange(VARIANTS)}.mp4"
            ).read_bytes()
        for _ in range(3):  # a new upload when the server lost the one under way (a fault at its end)
            outcome = self._tus(item, data)
            if outcome != "again":
                break
        if item.state == "new":  # given up (an outage longer than the client's patience)
            item.state = "rejected"
            item.outcome = item.outcome or "upload failed"
            self._delete(item)

    def _tus(self, item: Item, data: bytes) -> str:
        p = self.call("GET", f"/streaming/videos/{item.video_id}/upload", "GET /streaming/videos/{id}/upload")
        if p is not None and p.status_code == 409:  # the file arrived after all (its answer was lost)
            item.state = "active"
            return "done"
        if p is None or p.status_code != 200:
            item.outcome = f"upload parameters: {p.status_code if p else 'no answer'}"
            return "failed"
        params = p.json()
        endpoint = f"http://{params['servers'][0]['hostname']}/upload/"
        metadata = {
            "filename": f"{item.kind}-{item.number}.mp4",
            "token": params["token"],
            "video_id": str(item.video_id),
            "client_id": str(params["video"]["client_id"]),
        }
        headers = {
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items()
            ),
        }
        created = self.call("POST", endpoint, "POST /upload/", headers=headers)
        if created is not None and created.status_code == 507:
            self._refused(item, len(data))
            return "done"
        if created is None or created.status_code != 201:
            item.outcome = f"upload creation: {created.status_code if created else 'no answer'}"
            return "failed"
        location = urljoin(endpoint, created.headers["location"])
        offset, failures = 0, 0
        while offset < len(data):
            if item.kind == "upload_abandoned" and offset >= len(data) // 2:
                item.state, item.outcome = "abandoned", location
                return "done"
            chunk = data[offset : offset + CHUNK]
            patch_headers = {
                "Tus-Resumable": "1.0.0",
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
                "Upload-Checksum": "sha1 " + base64.b64encode(hashlib.sha1(chunk).digest()).decode(),
            }
            r = self.request("PATCH", location, "PATCH /upload/{id}", content=chunk, headers=patch_headers)
            if r is not None and r.status_code == 204:
                offset = int(r.headers["upload-offset"])
                continue
            if r is not None and r.status_code == 422 and item.kind == "bad_upload":
                item.state = "active"  # the video ends in error with the reason
                return "done"
            failures += 1
            if failures > 8 or (
                r is not None and r.status_code not in (404, 409, 423, 460) and r.status_code < 500
            ):
                item.outcome = (
                    f"PATCH answered {r.status_code if r else 'nothing'}: {r.text[:200] if r else ''}"
                )
                return "failed"
            time.sleep(2 * (0.5 + self.rng.random()))
            head = self.request("HEAD", location, "HEAD /upload/{id}", headers={"Tus-Resumable": "1.0.0"})
            if head is not None and head.status_code == 404:
                return "again"  # finished meanwhile (then GET .../upload says 409), or lost
            if head is not None and head.status_code == 200:
                offset = int(head.headers["upload-offset"])
        item.state = "active"
        return "done"

    def _refused(self, item: Item, length: int) -> None:
        """507 at upload creation: right while the disk is filled; the video is deleted."""
        soak = self.soak
        free = shutil.disk_usage(soak.data_dir).free
        item.state = "refused"
        item.outcome = "507"
        item.refused = (time.monotonic() - soak.t0, free, length)
        self._delete(item)

    def _delete(self, item: Item) -> None:
        r = self.call("DELETE", f"/streaming/videos/{item.video_id}", "DELETE /streaming/videos/{id}")
        item.deleted = r is not None and r.status_code == 204
        if not item.deleted:
            item.note += f" (DELETE answered {r.status_code if r else 'nothing'})"

    # -- following an item --
    def _follow(self, item: Item) -> bool:
        """Look at the item once; True when it has ended (as far as this client waits for it)."""
        for task_id in item.task_ids:
            if task_id in item.final:
                continue
            r = self.request("GET", f"/streaming/ai/tasks/{task_id}", "GET /streaming/ai/tasks/{id}")
            if r is not None and r.status_code == 200 and r.json()["status"] in FINAL_TASK:
                body = r.json()
                item.final[task_id] = body["status"]
                if body["status"] == "FAILURE":
                    item.outcome = str((body.get("result") or {}).get("error"))[:200]
        if item.kind == "video_translate" or item.video_id is None:
            done = all(t in item.final for t in item.task_ids)
            if done:
                item.state = "final"
            return done
        if "video" not in item.final:
            r = self.request("GET", f"/streaming/videos/{item.video_id}", "GET /streaming/videos/{id}")
            if r is None or r.status_code != 200:
                return False
            video = r.json()
            status = video["status"]
            if status == "ready" or status == "error" or (status == "empty" and video.get("error")):
                item.final["video"] = status
                item.outcome = str(video.get("error") or "")[:200]
                item.ready_at = time.monotonic()
            else:
                return False
        if item.final["video"] != "ready":
            item.state = "final"
            return True
        expected = (1 + len(item.targets)) if item.transcribe else 0
        waited = time.monotonic() - (item.ready_at or 0)
        if expected:
            r = self.request(
                "GET", f"/streaming/videos/{item.video_id}/subtitles", "GET /streaming/videos/{id}/subtitles"
            )
            have = len(r.json()) if r is not None and r.status_code == 200 else 0
            if have < expected and waited < 120:
                return False
            if have >= 1 and item not in self.ready_videos:
                self.ready_videos.append(item)
        item.state = "final"
        return True


# --- the soak ----------------------------------------------------------------------------------------------
class Soak:
    def __init__(self, args: argparse.Namespace, root: Path, clips: dict[str, str]) -> None:
        self.args = args
        self.seed = args.seed
        self.root = root
        self.clips = clips  # served name -> manifest path
        self.data_dir = root / "data"
        self.total_s = args.minutes * 60.0
        self.t0 = time.monotonic()
        self.stop_at = self.t0 + self.total_s
        self.drain_until = self.stop_at + args.drain
        self.aborted = threading.Event()
        self.events: list[dict[str, Any]] = []
        self.outages: list[tuple[float, float]] = []  # Redis and PostgreSQL down (run seconds)
        self.findings: list[dict[str, Any]] = []
        self.fill: dict[str, Any] = {}
        self.kills: list[dict[str, Any]] = []
        self.events_lock = threading.Lock()
        self.min_free = 0
        self.load_at_start = round(os.getloadavg()[0], 2)
        self.kill_rng = random.Random(args.seed)
        # set in start()
        self.pg: Postgres
        self.redis: Redis
        self.services: Services
        self.media: MediaServer
        self.receiver: Receiver
        self.engine: sa.Engine
        self.clients: list[Client] = []
        self.probe_key = ""

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def record(self, event: dict[str, Any]) -> None:
        with self.events_lock:
            self.events.append(event)
        say(f"chaos: {json.dumps(event)[:300]}")

    # -- start --
    def start(self) -> None:
        self.root.chmod(0o755)  # postgres must reach its folder
        self.data_dir.mkdir()
        say("starting PostgreSQL and Redis")
        self.pg = Postgres(self.root, _port(55432))
        self.pg.start()
        self.pg.create_database()
        self.redis = Redis(self.root, _port(56379))
        self.redis.start()
        migrate(self.pg.url)
        self.engine = sa.create_engine(self.pg.url, pool_pre_ping=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VODSCRIBE_")}
        env.update(SETTINGS)
        env.update(
            {
                "VODSCRIBE_DATA_DIR": str(self.data_dir),
                "VODSCRIBE_DATABASE_URL": self.pg.url,
                "VODSCRIBE_BROKER_URL": self.redis.url,
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(ROOT),
            }
        )
        try:
            env["VODSCRIBE_LLM_MODEL"] = str(llm_model_file())
        except Exception as exc:  # no vodscribe[llm]: translations fail with their reason
            say(f"no bundled LLM ({exc}); translations will fail with a reason")
        free = shutil.disk_usage(self.data_dir).free  # after the LLM's first join (1.1 GB)
        self.min_free = max(0, free - DISK_MARGIN)
        env["VODSCRIBE_UPLOAD_MIN_FREE_BYTES"] = str(self.min_free)
        self.media = MediaServer(self.root / "media")
        threading.Thread(target=self.media.serve_forever, daemon=True).start()
        modes = {}
        for i in range(self.args.clients):
            modes[i] = "down" if i % 10 == 3 else {1: "flaky", 2: "slow"}.get(i % 4, "ok")
        self.receiver = Receiver(modes, self.seed)
        threading.Thread(target=self.receiver.serve_forever, daemon=True).start()
        self.services = Services(self.root, env)
        say("starting two API processes and the workers")
        self.services.start_api("api-1")
        self.services.start_api("api-2")
        for slot in WORKERS:
            self.services.start_worker(slot)
        with session_scope(self.pg.url) as s:
            keys = [create_client(s, f"soak-{i:02d}")[1] for i in range(self.args.clients)]
            self.probe_key = create_client(s, "probe")[1]
        self._wait_for_workers()
        self.t0 = time.monotonic()
        self.stop_at = self.t0 + self.total_s
        self.drain_until = self.stop_at + self.args.drain
        self.clients = [Client(self, i, k) for i, k in enumerate(keys)]

    def _wait_for_workers(self) -> None:
        """Until every worker logs that it is ready (models loaded), at most 3 minutes."""
        deadline = time.monotonic() + 180
        for proc in self.services.workers.values():
            while "ready." not in proc.log.read_text(errors="replace"):
                if proc.popen.poll() is not None:
                    raise RuntimeError(f"{proc.slot} exited at start:\n{proc.log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{proc.slot} not ready after 3 minutes")
                time.sleep(0.5)

    # -- chaos --
    def plan(self) -> list[tuple[float, str, Callable[[], None]]]:
        total = self.total_s
        window = min(60.0, max(15.0, 0.12 * total))
        plan: list[tuple[float, str, Callable[[], None]]] = [
            (0.22 * total, "restart_redis", self.restart_redis),
            (0.38 * total, "media_500", lambda: self.media_500(window)),
            (0.55 * total, "restart_postgres", self.restart_postgres),
            (0.70 * total, "fill_disk", lambda: self.fill_disk(window)),
        ]
        at = 30.0
        while at < total - 10:
            plan.append((at, "kill_worker", self.kill_worker))
            at += 60.0
        return sorted(plan, key=lambda p: p[0])

    def chaos(self) -> None:
        threads = []
        plan = self.plan()
        while not self.aborted.is_set():
            now = time.monotonic() - self.t0
            while plan and plan[0][0] <= now:
                _, name, action = plan.pop(0)
                thread = threading.Thread(target=self._guarded, args=(name, action), daemon=True)
                thread.start()
                threads.append(thread)
            self.watchdog()
            if not plan and time.monotonic() > self.stop_at:
                break
            time.sleep(1.0)
        for thread in threads:
            thread.join()

    def _guarded(self, name: str, action: Callable[[], None]) -> None:
        try:
            action()
        except Exception as exc:
            self.findings.append({"what": f"chaos step {name} failed (soak problem)", "error": repr(exc)})
            say(f"chaos step {name} failed: {exc!r}")

    def watchdog(self) -> None:
        """A service process that died without being killed by the chaos loop is a finding; it is
        started again so the run goes on."""
        with self.services.lock:
            procs = [*self.services.workers.values(), *self.services.apis.values()]
        for proc in procs:
            code = proc.popen.poll()
            if code is None or proc.killed:
                continue
            tail = proc.log.read_text(errors="replace")[-2000:]
            self.findings.append(
                {
                    "what": f"{proc.slot} exited by itself (status {code})",
                    "at_s": self.now(),
                    "log_tail": tail,
                }
            )
            say(f"{proc.slot} exited by itself ({code}); starting it again")
            proc.killed = True
            if proc.slot in WORKERS:
                self.services.start_worker(proc.slot)
            else:
                with contextlib.suppress(RuntimeError):
                    self.services.start_api(proc.slot)

    def kill_worker(self) -> None:
        with self.services.lock:
            slot = self.kill_rng.choice(sorted(self.services.workers))
            proc = self.services.workers[slot]
            proc.killed = True
        pids = _group_pids(proc.popen.pid)
        held = self._held(pids)
        at = self.now()
        os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait()
        kill = {"event": "kill_worker", "at_s": at, "slot": slot, "pids": pids, **held}
        self.kills.append(kill)
        self.record(kill)
        time.sleep(3)
        if not self.aborted.is_set():
            self.services.start_worker(slot)

    def _held(self, pids: list[int]) -> dict[str, Any]:
        host = socket.gethostname()
        names = [f"{host}:{pid}" for pid in pids]
        try:
            with self.engine.connect() as c:
                tasks = (
                    c.execute(
                        sa.text("select id from ai_tasks where status = 'STARTED' and worker = any(:w)"),
                        {"w": names},
                    )
                    .scalars()
                    .all()
                )
                videos = (
                    c.execute(
                        sa.text("select id from videos where job_state = 'running' and job_worker = any(:w)"),
                        {"w": names},
                    )
                    .scalars()
                    .all()
                )
            return {"held_tasks": list(tasks), "held_videos": list(videos)}
        except Exception as exc:
            return {"held": f"unknown ({type(exc).__name__})"}

    def restart_redis(self) -> None:
        start = self.now()
        self.redis.stop()
        time.sleep(5)
        self.redis.start()
        end = self.now()
        self.outages.append((start, end))
        self.record({"event": "restart_redis", "at_s": start, "back_at_s": end})

    def restart_postgres(self) -> None:
        start = self.now()
        self.pg.stop("fast")
        stopped = self.now()
        time.sleep(5)
        self.pg.start()
        end = self.now()
        self.outages.append((start, end))
        self.record({"event": "restart_postgres", "at_s": start, "stopped_at_s": stopped, "back_at_s": end})

    def media_500(self, seconds: float) -> None:
        start = self.now()
        self.media.failing = True
        time.sleep(seconds)
        self.media.failing = False
        self.record(
            {
                "event": "media_500",
                "at_s": start,
                "until_s": self.now(),
                "answered_500": self.media.served[500],
            }
        )

    def fill_disk(self, seconds: float) -> None:
        filler = self.root / "filler"
        free = shutil.disk_usage(self.data_dir).free
        size = free - self.min_free + 64 * 1024 * 1024
        start = self.now()
        self.fill = {"at_s": start, "free_before": free, "min_free": self.min_free, "filler_bytes": size}
        try:
            fd = os.open(filler, os.O_CREAT | os.O_WRONLY, 0o600)
            try:
                os.posix_fallocate(fd, 0, size)
            finally:
                os.close(fd)
            self.fill["free_during"] = shutil.disk_usage(self.data_dir).free
            self.fill["probe_during"] = self.probe_upload()
            time.sleep(max(0.0, seconds - (self.now() - start)))
        finally:
            filler.unlink(missing_ok=True)
        self.fill["until_s"] = self.now()
        self.fill["probe_after"] = self.probe_upload()
        self.record({"event": "fill_disk", **self.fill})

    def probe_upload(self) -> int:
        """Create a video and an upload of 1 MiB for it with the probe client; the status of the
        upload's creation (507 while the disk is full). The upload and the video are removed."""
        api = self.services.api_urls[0]
        headers = {"Authorization": f"APIKey {self.probe_key}"}
        with httpx.Client(base_url=api, headers=headers, timeout=30) as http:
            video = http.post("/streaming/videos", json={"video": {"name": "probe"}}).json()
            params = http.get(f"/streaming/videos/{video['id']}/upload").json()
            metadata = {
                "token": params["token"],
                "video_id": str(video["id"]),
                "client_id": str(video["client_id"]),
            }
            tus = {
                "Tus-Resumable": "1.0.0",
                "Upload-Length": str(1024 * 1024),
                "Upload-Metadata": ",".join(
                    f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items()
                ),
            }
            created = http.post(api + "/upload/", headers=tus)
            if created.status_code == 201:
                http.delete(
                    urljoin(api + "/upload/", created.headers["location"]), headers={"Tus-Resumable": "1.0.0"}
                )
            http.delete(f"/streaming/videos/{video['id']}")
            return created.status_code

    # -- the end --
    def leftovers(self) -> dict[str, list[str]]:
        """Files that should not be there once everything has ended."""
        data = self.data_dir
        found: dict[str, list[str]] = {}
        uploads = data / "uploads"
        found["uploads"] = sorted(
            p.name for p in (uploads.iterdir() if uploads.is_dir() else []) if UPLOAD_ID.fullmatch(p.name)
        )
        work = data / "work"
        found["work"] = sorted(p.name for p in work.iterdir()) if work.is_dir() else []
        videos = data / "videos"
        keys: set[str] = set()
        with contextlib.suppress(Exception), self.engine.connect() as c:
            keys = {f"{r[0]}_{r[1]}" for r in c.execute(sa.text("select client_id, slug from videos"))}
        found["sources"], found["temp_files"], found["deleted_video_folders"] = [], [], []
        if videos.is_dir():
            for folder in videos.iterdir():
                if not folder.is_dir():
                    continue
                if keys and folder.name not in keys:
                    found["deleted_video_folders"].append(folder.name)
                found["sources"] += [str(p.relative_to(videos)) for p in (folder / "source").glob("*")]
                found["temp_files"] += [str(p.relative_to(videos)) for p in folder.rglob(".*.tmp*")]
        return found

    def unfinished(self) -> dict[str, int]:
        with self.engine.connect() as c:

            def count(sql: str) -> int:
                return int(c.execute(sa.text(sql)).scalar() or 0)

            return {
                "tasks": count(
                    "select count(*) from ai_tasks where status not in ('SUCCESS','FAILURE','REVOKED')"
                ),
                "videos": count("select count(*) from videos where job_state in ('queued','running')"),
                "deliveries": count("select count(*) from webhook_deliveries where status = 'pending'"),
                "kept_sources": count(
                    "select count(*) from videos where asr_source is not null or uploaded_source is not null"
                ),
            }

    def wait_quiet(self) -> dict[str, Any]:
        """Until nothing is unfinished and no file is left, or the drain time is over."""
        say("waiting for the work, the deliveries and the reaper to end")
        last: dict[str, Any] = {}
        while True:
            try:
                last = {**self.unfinished(), **{k: len(v) for k, v in self.leftovers().items()}}
            except Exception as exc:
                last = {"error": repr(exc)}
            if last and all(v == 0 for v in last.values()):
                return last
            if time.monotonic() > self.drain_until or self.aborted.is_set():
                return last
            time.sleep(5)

    def stop(self) -> None:
        self.aborted.set()
        with contextlib.suppress(Exception):
            self.services.stop_all()
        with contextlib.suppress(Exception):
            self.redis.stop()
        with contextlib.suppress(Exception):
            if self.pg.running():
                self.pg.stop("immediate")
        for server in ("media", "receiver"):
            with contextlib.suppress(Exception):
                getattr(self, server).shutdown()
        with contextlib.suppress(Exception):
            self.engine.dispose()
        (self.root / "filler").unlink(missing_ok=True)


# --- checks and the report ----------------------------------------------------------------------------------
def _rows(engine: sa.Engine, sql: str) -> list[dict[str, Any]]:
    with engine.connect() as c:
        return [dict(r._mapping) for r in c.execute(sa.text(sql))]


def _pct(values: list[float], p: float) -> float:
    return round(1000 * values[min(len(values) - 1, int(p * len(values)))], 1) if values else 0.0


def _latency(samples: list[Sample]) -> dict[str, Any]:
    seconds = sorted(s.seconds for s in samples)
    if not seconds:
        return {"requests": 0}
    return {
        "requests": len(seconds),
        "p50": _pct(seconds, 0.50),
        "p90": _pct(seconds, 0.90),
        "p99": _pct(seconds, 0.99),
        "max": round(1000 * seconds[-1], 1),
        "mean": round(1000 * statistics.mean(seconds), 1),
    }


def _check(failures: list[Any], limit: int = 10) -> dict[str, Any]:
    return {"ok": not failures, "count": len(failures), "examples": failures[:limit]}


def report(soak: Soak, quiet: dict[str, Any]) -> dict[str, Any]:
    engine = soak.engine
    clients = soak.clients
    items = [i for c in clients for i in c.items]
    samples = [s for c in clients for s in c.samples]
    tasks = _rows(
        engine,
        "select t.id, t.status, t.attempts, t.worker, t.result, t.task_data, t.video_id, t.attach_subtitle,"
        " c.name as client from ai_tasks t join clients c on c.id = t.client_id where c.name like 'soak-%'",
    )
    videos = _rows(
        engine,
        "select v.id, v.client_id, v.slug, v.name, v.status, v.error, v.job_state, v.job_attempts,"
        " v.asr_source, v.uploaded_source, v.origin_url from videos v join clients c on c.id = v.client_id"
        " where c.name like 'soak-%'",
    )
    subtitles = _rows(engine, "select id, video_id, name, language, vtt, ai_task_id from subtitles")
    deliveries = _rows(
        engine,
        "select d.id, d.event, d.payload, d.status, d.attempts, c.name as client from webhook_deliveries d"
        " join clients c on c.id = d.client_id",
    )
    attempts = _rows(engine, "select delivery_id, number, status_code, error from webhook_attempts")
    by_task = {t["id"]: t for t in tasks}
    by_video = {v["id"]: v for v in videos}
    max_attempts = int(SETTINGS["VODSCRIBE_MAX_ATTEMPTS"])
    hook_attempts = int(SETTINGS["VODSCRIBE_WEBHOOK_MAX_ATTEMPTS"])

    # -- every task and video ended, with a reason when it failed --
    refused = {i.video_id for i in items if i.state == "refused"}
    deleted = {i.video_id for i in items if i.deleted}
    abandoned = {i.video_id for i in items if i.state == "abandoned"}
    unfinished_tasks = [t["id"] for t in tasks if t["status"] not in FINAL_TASK]
    no_reason = [
        t["id"]
        for t in tasks
        if t["status"] in ("FAILURE", "REVOKED") and not (t["result"] or {}).get("error")
    ]
    unfinished_videos: list[Any] = []
    video_no_reason, ended = [], []
    for v in videos:
        if v["id"] in abandoned and v["job_state"] == "idle" and v["status"] == "empty":
            continue  # no file ever came: its partial upload must be swept (no_files_left)
        if v["id"] in refused:
            continue  # its DELETE failed: nothing_lost reports it
        ended.append(v["id"])
        if v["status"] == "ready" and v["job_state"] == "done":
            continue
        # error/empty with the job done (the download or processing failed), or never started (an
        # upload that was not media: error, job idle): ended, if the reason is given
        if v["status"] not in ("error", "empty") or v["job_state"] not in ("done", "idle"):
            unfinished_videos.append({"id": v["id"], "status": v["status"], "job_state": v["job_state"]})
        elif not v["error"]:
            video_no_reason.append(v["id"])
    submitted_tasks = [t for i in items for t in i.task_ids if i.kind != "video_translate"]
    submitted_videos = [i.video_id for i in items if i.video_id is not None and i.kind != "video_translate"]
    lost = [t for t in submitted_tasks if t not in by_task] + [
        v for v in submitted_videos if v not in by_video and v not in deleted
    ]
    still_there = [v for v in refused if v in by_video]

    # -- nothing ran twice --
    events_per_task = Counter[str]()
    ready_events = Counter[int]()
    video_events = Counter[int]()
    for d in deliveries:
        message = (d["payload"] or {}).get("message", {})
        if d["event"] == "ai_task":
            events_per_task[message.get("task", {}).get("task_id")] += 1
        elif d["event"] == "video":
            video = message.get("video", {})
            video_events[video.get("id")] += 1
            if video.get("status") == "ready":
                ready_events[video.get("id")] += 1
    twice: list[Any] = []
    twice += [f"task id {t} handed out twice" for t, n in Counter(submitted_tasks).items() if n > 1]
    twice += [f"video id {v} handed out twice" for v, n in Counter(submitted_videos).items() if n > 1]
    twice += [f"task {t}: {n} ai_task events" for t, n in events_per_task.items() if n > 1]
    twice += [f"video {v}: {n} 'ready' events" for v, n in ready_events.items() if n > 1]
    twice += [f"task {t['id']}: {t['attempts']} attempts" for t in tasks if t["attempts"] > max_attempts]
    twice += [
        f"video {v['id']}: {v['job_attempts']} attempts" for v in videos if v["job_attempts"] > max_attempts
    ]
    for item in items:
        for key, seen in item.final.items():
            now = by_video[item.video_id]["status"] if key == "video" and item.video_id in by_video else None
            if key != "video":
                now = by_task[key]["status"] if key in by_task else None
            if now is not None and now != seen:
                twice.append(f"{key} of item {item.client}/{item.number}: client saw {seen}, now {now}")
    held_tasks = {t for k in soak.kills for t in k.get("held_tasks", [])}
    held_videos = {v for k in soak.kills for v in k.get("held_videos", [])}
    retried_tasks = [t for t in tasks if t["attempts"] > 1]
    retried_videos = [v for v in videos if v["job_attempts"] > 1]

    # -- subtitles attached once --
    subs_by_task = Counter(s["ai_task_id"] for s in subtitles if s["ai_task_id"])
    subs_by_video: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for s in subtitles:
        subs_by_video[s["video_id"]].append(s)
    sub_problems: list[Any] = []
    expected_subs = 0
    for t in tasks:
        video = by_video.get(t["video_id"]) if t["video_id"] else None
        if not t["attach_subtitle"] or video is None:
            continue
        n = subs_by_task[t["id"]]
        data = TaskData.model_validate(t["task_data"])
        result = TranscriptionResult.model_validate(t["result"] or {})
        named = ai_subtitle_name(data, result) if t["status"] == "SUCCESS" else None
        if n > 1:
            sub_problems.append(f"task {t['id']}: attached {n} times to video {video['id']}")
        if named is None or video["status"] != "ready":
            if n:
                sub_problems.append(
                    f"task {t['id']} ({t['status']}, video {video['status']}): attached anyway"
                )
            continue
        expected_subs += 1
        if n == 0:
            same = [
                s for s in subs_by_video[video["id"]]
                if s["language"] == named[1] and s["vtt"] == (t["result"] or {}).get("vttContent")
            ]  # fmt: skip
            if not same:
                sub_problems.append(
                    f"task {t['id']}: its {named[0]} not attached to ready video {video['id']}"
                )
    for s in subtitles:
        if s["ai_task_id"] and s["ai_task_id"] not in by_task and s["video_id"] in by_video:
            sub_problems.append(f"subtitle {s['id']}: made by unknown task {s['ai_task_id']}")
    for video_id, subs in subs_by_video.items():
        if video_id not in by_video:
            continue
        generated = [s for s in subs if s["name"].endswith("(AI-generated)")]
        if len(generated) > 1:
            sub_problems.append(f"video {video_id}: {len(generated)} AI-generated subtitles")
        names = Counter((s["name"], s["language"]) for s in subs)
        sub_problems += [f"video {video_id}: {n} subtitles named {k[0]!r}" for k, n in names.items() if n > 1]
    playlist_problems = _playlists(soak, videos, subs_by_video)

    # -- webhooks --
    tries: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in attempts:
        tries[a["delivery_id"]].append(a)
    seen = soak.receiver.seen
    hook_problems: list[Any] = []
    soak_deliveries = [d for d in deliveries if d["client"].startswith("soak-")]
    for d in soak_deliveries:
        rows = tries[d["id"]]
        if d["status"] == "pending":
            hook_problems.append(f"delivery {d['id']} still pending after {d['attempts']} attempts")
        elif d["status"] == "delivered":
            if not any(r["status_code"] and 200 <= r["status_code"] < 300 for r in rows):
                hook_problems.append(f"delivery {d['id']} delivered without a 2xx attempt recorded")
            if not any(r.answered and 200 <= r.answered < 300 for r in seen.get(d["id"], [])):
                hook_problems.append(f"delivery {d['id']} delivered but the receiver never answered it 2xx")
        elif d["status"] == "failed" and not rows:
            hook_problems.append(f"delivery {d['id']} failed with no attempt recorded")
        elif d["status"] == "failed" and d["attempts"] < hook_attempts:
            hook_problems.append(
                f"delivery {d['id']} failed after {d['attempts']} of {hook_attempts} attempts"
            )
        mode = soak.receiver.modes.get(int(d["client"].removeprefix("soak-")))
        if (mode, d["status"]) in (("ok", "failed"), ("down", "delivered")):
            hook_problems.append(f"delivery {d['id']} to a receiver that is always {mode}: {d['status']}")
    known = {d["id"] for d in deliveries}
    hook_problems += [f"receiver got unknown delivery {i}" for i in seen if i not in known]
    hook_problems += [f"bad signature on delivery {i}" for i in soak.receiver.bad_signatures]
    for t in tasks:
        if t["status"] in FINAL_TASK and events_per_task[t["id"]] == 0:
            hook_problems.append(f"task {t['id']} ended ({t['status']}) without an ai_task event")
    for v in videos:
        if v["id"] in ended and video_events[v["id"]] == 0:
            hook_problems.append(f"video {v['id']} ended ({v['status']}) without a video event")
    mismatched_attempts = [d["id"] for d in soak_deliveries if d["attempts"] != len(tries[d["id"]])]

    # -- files --
    leftovers = soak.leftovers()
    kept = [
        f"video {v['id']} ({v['status']}) still records {v['asr_source'] or ''} {v['uploaded_source'] or ''}"
        for v in videos
        if v["job_state"] == "done" and (v["asr_source"] or v["uploaded_source"])
    ]
    file_problems = [f"{kind}: {name}" for kind, names in leftovers.items() for name in names] + kept

    # -- API --
    run_samples = [s for s in samples if s.at <= soak.total_s]

    def in_outage(at: float) -> bool:
        return any(start - 2 <= at <= end + 15 for start, end in soak.outages)

    calm = [s for s in run_samples if not in_outage(s.at)]
    errors_outside = [
        f"{s.route} answered {s.status or 'nothing'} at {s.at:.1f} s"
        for s in samples
        if (s.status in RETRIABLE - {429} or s.status == 0) and not in_outage(s.at)
    ]
    routes: dict[str, list[Sample]] = defaultdict(list)
    for s in run_samples:
        routes[s.route].append(s)
    fill_from, fill_until = soak.fill.get("at_s", -1.0) - 1, soak.fill.get("until_s", -1.0) + 1
    unexpected_507 = [
        f"item {i.client}/{i.number} at {i.refused[0]:.1f} s, {i.refused[1]} bytes free"
        for i in items
        if i.refused is not None
        and not fill_from <= i.refused[0] <= fill_until
        and i.refused[1] - i.refused[2] >= soak.min_free
    ]
    disk = (
        []
        if soak.fill.get("probe_during") == 507
        else [f"probe upload during the fill: {soak.fill.get('probe_during')}"]
    )
    if soak.fill.get("probe_after") != 201:
        disk.append(f"probe upload after the fill: {soak.fill.get('probe_after')}")
    disk += [f"507 outside the fill with room on the disk: {n}" for n in unexpected_507]

    invariants = {
        "tasks_finished_with_reason": _check(
            [f"task {t} unfinished" for t in unfinished_tasks]
            + [f"task {t} failed without a reason" for t in no_reason]
        ),
        "videos_finished_with_reason": _check(
            unfinished_videos + [f"video {v} failed without a reason" for v in video_no_reason]
        ),
        "nothing_lost": _check(
            [f"{x} submitted but not in the database" for x in lost]
            + [f"video {v} refused (507) but not deleted" for v in still_there]
        ),
        "none_run_twice": _check(twice),
        "subtitles_attached_once": _check(sub_problems + playlist_problems),
        "webhooks_delivered_or_failed": _check(hook_problems),
        "no_files_left": _check(file_problems),
        "disk_full_refused_with_507": _check(disk),
        "no_5xx_outside_outages": _check(errors_outside),
        "services_only_died_when_killed": _check(soak.findings),
        "clients_ran": _check([f"client {c.index}: {e}" for c in clients for e in c.errors]),
    }
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)
    for i in items:
        outcome = i.state if i.state != "final" else (
            "/".join(sorted(set(i.final.values()))) or "final"
        )  # fmt: skip
        by_kind[i.kind][outcome] += 1
    statuses = Counter(str(s.status or "no answer") for s in samples if not 200 <= s.status < 300)
    wrong_language = []
    for t in tasks:
        expected = _expected_language(t["task_data"].get("url", ""))
        spoken = (t["result"] or {}).get("languages", [])[:1]
        if t["status"] == "SUCCESS" and not t["video_id"] and expected is not None and spoken != [expected]:
            wrong_language.append(t["id"])
    return {
        "config": {
            "minutes": soak.args.minutes,
            "clients": soak.args.clients,
            "seed": soak.seed,
            "drain_s": soak.args.drain,
            "cpu_count": os.cpu_count(),
            "load_average_1m_at_start": soak.load_at_start,
            "api_processes": len(soak.services.api_urls),
            "workers": {slot: queues for slot, (queues, _) in WORKERS.items()},
            "settings": {k.removeprefix("VODSCRIBE_"): v for k, v in SETTINGS.items()},
            "upload_min_free_bytes": soak.min_free,
            "receiver_modes": Counter(soak.receiver.modes.values()),
            "mix": MIX,
        },
        "chaos": soak.events,
        "quiet_after_drain": quiet,
        "wall_s": round(time.monotonic() - soak.t0, 1),
        "submitted": {kind: dict(c) for kind, c in sorted(by_kind.items())},
        "tasks": {
            "in_database": len(tasks),
            "by_status": dict(Counter(t["status"] for t in tasks)),
            "from_videos": sum(1 for t in tasks if t["video_id"]),
            "failure_reasons": dict(
                Counter(
                    str((t["result"] or {}).get("error"))[:120] for t in tasks if t["status"] == "FAILURE"
                )
            ),
            "retried": len(retried_tasks),
            "retried_held_by_a_killed_worker": sum(1 for t in retried_tasks if t["id"] in held_tasks),
            "attempts": dict(Counter(t["attempts"] for t in tasks)),
            "wrong_language": len(wrong_language),
        },
        "videos": {
            "in_database": len(videos),
            "by_status": dict(Counter(v["status"] for v in videos)),
            "error_reasons": dict(
                Counter(str(v["error"])[:120] for v in videos if v["status"] != "ready" and v["id"] in ended)
            ),
            "retried": len(retried_videos),
            "retried_held_by_a_killed_worker": sum(1 for v in retried_videos if v["id"] in held_videos),
            "refused_507": len(refused),
            "abandoned_uploads": len(abandoned),
        },
        "subtitles": {
            "ai_attached": sum(subs_by_task.values()),
            "expected_from_tasks": expected_subs,
        },
        "webhooks": {
            "deliveries": len(soak_deliveries),
            "by_status": dict(Counter(d["status"] for d in soak_deliveries)),
            "by_event": dict(Counter(d["event"] for d in soak_deliveries)),
            "attempts_recorded": sum(len(tries[d["id"]]) for d in soak_deliveries),
            "attempt_counter_differs_from_rows": len(mismatched_attempts),
            "received_posts": sum(len(v) for v in seen.values()),
            "received_ids": len(seen),
            "received_more_than_once": sum(1 for v in seen.values() if len(v) > 1),
            "answered_2xx_more_than_once": sum(
                1 for v in seen.values() if sum(1 for r in v if 200 <= r.answered < 300) > 1
            ),
            "used_upload_token_marks": len(list((soak.data_dir / "uploads" / "tokens").glob("*"))),
        },
        "api_latency_ms": {
            "while_submitting": _latency(run_samples),
            "while_submitting_outside_outages": _latency(calm),
            "drain": _latency([s for s in samples if s.at > soak.total_s]),
            "by_route": {route: _latency(v) for route, v in sorted(routes.items())},
        },
        "non_2xx": dict(statuses.most_common()),
        "media_server_answers": dict(soak.media.served),
        "log_errors": _log_errors(soak),
        "invariants": invariants,
        "failed_invariants": [name for name, check in invariants.items() if not check["ok"]],
    }


def _expected_language(url: str) -> str | None:
    for clip, language in CLIPS.items():
        if Path(clip).stem in url and "/missing/" not in url:
            return language
    return None


def _playlists(soak: Soak, videos: list[dict[str, Any]], subs: dict[int, list[dict[str, Any]]]) -> list[str]:
    """Each ready video's master playlist lists each of its subtitles once."""
    problems = []
    base = soak.services.api_urls[0]
    with httpx.Client(timeout=30) as http:
        for v in videos:
            if v["status"] != "ready":
                continue
            try:
                master = http.get(f"{base}/videos/{v['client_id']}_{v['slug']}/master.m3u8").text
            except httpx.HTTPError as exc:
                problems.append(f"video {v['id']}: master playlist: {exc!r}")
                continue
            listed = master.count("TYPE=SUBTITLES")
            stored = len(subs.get(v["id"], []))
            if listed != stored:
                problems.append(f"video {v['id']}: {listed} subtitles in its playlist, {stored} stored")
    return problems


def _log_errors(soak: Soak) -> dict[str, dict[str, int]]:
    """Per process log (kept with --keep): ERROR/CRITICAL lines, tracebacks, and queue messages whose
    task raised (e.g. a claim while PostgreSQL was down: the message is acknowledged and the job
    waits for the reaper's ``REDISPATCH_AFTER_S``)."""
    counts: dict[str, dict[str, int]] = {}
    for log in sorted(soak.services.logs.glob("*.log")):
        text = log.read_text(errors="replace")
        found = {
            "errors": text.count(" ERROR ") + text.count("ERROR/") + text.count("CRITICAL"),
            "tracebacks": text.count("Traceback"),
            "tasks_raised": text.count("raised unexpected"),
        }
        if any(found.values()):
            counts[log.stem] = found
    return counts


# --- setup ----------------------------------------------------------------------------------------------
def _media(folder: Path, root: Path) -> dict[str, str]:
    """Copy the clips into ``root/media`` and mux each with a small picture into ``VARIANTS`` MP4s
    (``mp4/<stem>.<n>.mp4``, the same streams with another tag); served name -> manifest path."""
    import imageio_ffmpeg

    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    media = root / "media"
    (media / "mp4").mkdir(parents=True)
    served: dict[str, str] = {}
    for clip in CLIPS:
        source = folder / find_clip(folder, clip)
        name = Path(clip).name
        shutil.copyfile(source, media / name)
        served[name] = clip
        base = media / "mp4" / f"{Path(clip).stem}.mp4"
        subprocess.run(
            [ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=15",
             "-i", str(source), "-shortest", "-c:v", "libx264", "-preset", "ultrafast",
             "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", str(base)],
            check=True,
        )  # fmt: skip
        for n in range(VARIANTS):
            subprocess.run(
                [ffmpeg, "-v", "error", "-y", "-i", str(base), "-c", "copy", "-metadata", f"comment=soak-{n}",
                 str(media / "mp4" / f"{Path(clip).stem}.{n}.mp4")],
                check=True,
            )  # fmt: skip
        base.unlink()
    return served


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20, help="how long clients submit (default 20)")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drain", type=float, default=600, help="seconds to wait for the end afterwards")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, databases)")
    parser.add_argument("--data", type=Path, default=None, metavar="DIR", help="test-data folder")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: PostgreSQL is started as the postgres user with runuser")
    folder = args.data or (DEFAULT_TESTDATA if DEFAULT_TESTDATA.is_dir() else REPO_COPIES)
    root = Path(tempfile.mkdtemp(prefix="vodscribe-soak-"))
    say(f"temp dir {root}")

    def terminate(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    soak = Soak(args, root, _media(folder, root))
    result: dict[str, Any] | None = None
    try:
        soak.start()
        say(f"clients start; they submit for {args.minutes:g} min")
        threads = [
            threading.Thread(target=c.run, name=f"client-{c.index}", daemon=True) for c in soak.clients
        ]
        for thread in threads:
            thread.start()
        chaos = threading.Thread(target=soak.chaos, name="chaos", daemon=True)
        chaos.start()
        chaos.join()
        say("chaos over; clients finish what they submitted")
        for thread in threads:
            thread.join(max(1.0, soak.drain_until - time.monotonic()))
        quiet = soak.wait_quiet()
        result = report(soak, quiet)
    except KeyboardInterrupt:
        say("interrupted; stopping everything")
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl+C must not stop the cleanup
            signal.signal(number, signal.SIG_IGN)
        soak.stop()
        if args.keep:
            say(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if result is None:
        return 130
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if result["failed_invariants"]:
        say("failed: " + ", ".join(result["failed_invariants"]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
