"""Shared fixtures: a real HTTP media server on 127.0.0.1 and a real ``vodscribe serve`` process."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NoReturn
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa
from gcore import Gcore

from tests.processes import stop_group
from tests.waiting import eventually

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from vodscribe.config import Settings

DATA = Path(__file__).parent / "data"
REQUIRE_SERVICES = os.environ.get("VODSCRIBE_TEST_REQUIRE_SERVICES") == "1"
PG_URL = os.environ.get("VODSCRIBE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("VODSCRIBE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: moto's S3 server (:func:`s3_endpoint`): the bucket and the credentials it accepts.
BUCKET = "vodscribe-media"
S3_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


def unavailable(what: str, exc: Exception) -> NoReturn:
    """Skip a test whose service is missing; CI (VODSCRIBE_TEST_REQUIRE_SERVICES=1) fails it instead."""
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required here (VODSCRIBE_TEST_REQUIRE_SERVICES=1) but unreachable: {exc}")
    pytest.skip(f"{what} not reachable: {exc}")


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a fresh PostgreSQL database, dropped afterwards."""
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"vodscribe_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as c:
            c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        unavailable("PostgreSQL", exc)
    try:
        yield sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, with :data:`BUCKET` created."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, **S3_CREDENTIALS).create_bucket(Bucket=BUCKET)
    yield endpoint
    server.stop()


def llm_model_file() -> Path:
    """The bundled translation LLM, joined once per machine into the temp dir (hash-checked, reused
    by every test and every test service instead of a 1.1 GB join per data directory)."""
    from vodscribe.engines import bundled_llm

    return bundled_llm.model_path(Path(tempfile.gettempdir()) / "vodscribe-test-models")


@contextlib.contextmanager
def in_process_api(settings: Settings, client_name: str = "a") -> Iterator[TestClient]:
    """The API in this process (FastAPI's TestClient) on ``settings``' migrated database, with the
    key of a new client ``client_name``; no worker runs."""
    from fastapi.testclient import TestClient

    from vodscribe.api.app import create_app
    from vodscribe.db.session import migrate, session_scope
    from vodscribe.services.clients import create_client

    migrate(settings.db_url)
    with session_scope(settings.db_url) as s:
        _, key = create_client(s, client_name)
    with TestClient(create_app(settings), headers={"Authorization": f"APIKey {key}"}) as c:
        yield c


def tone_video(out: Path, seconds: float) -> Path:
    """A 320x240 MP4 of ``seconds``: ffmpeg's test picture and a 440 Hz tone."""
    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         str(out)],
        check=True,
    )  # fmt: skip
    return out


def admit_loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the SSRF guard's download client (``allow_private_urls=False``) admit 127.0.0.1, any
    port, and no other private address, so guarded downloads can be tested on loopback servers."""
    from ssrfguard import Policy

    from vodscribe.media import fetch

    def policy(settings: Settings) -> Policy:
        return Policy(
            allowed_networks=("127.0.0.1/32",),
            allowed_ports=frozenset(range(1, 65536)),
            max_redirects=settings.fetch_max_redirects,
        )

    monkeypatch.setattr(fetch, "_policy", policy)
    monkeypatch.setattr(fetch, "_check_public", lambda *a, **k: None)  # the pre-check knows no exceptions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reachable(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (the benchmarks' PostgreSQL and Redis)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@dataclass
class Transfer:
    """What the media server sent for one ``/endless/`` request (``MediaServer.transfer``)."""

    sent: int = 0
    closed_by_client: bool = False


class _Handler(SimpleHTTPRequestHandler):
    """Static files, plus ``/page.html`` (a web page), ``/slow/<file>`` (dribbles the body) and
    ``/endless/<file>`` (the file, then zeros, until the client hangs up)."""

    transfers: ClassVar[dict[str, Transfer]] = {}  # request path -> what was sent

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/watch?v=dQw4w9WgXcQ":
            body = b"<!doctype html><html><head><title>Video</title></head><body>player</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/slow/"):
            path = Path(self.directory) / self.path.removeprefix("/slow/")
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(0, len(data), 4096):
                self.wfile.write(data[i : i + 4096])
                time.sleep(0.05)
            return
        if self.path.startswith("/endless/"):
            self._endless(Path(self.directory) / urlsplit(self.path).path.removeprefix("/endless/"))
            return
        super().do_GET()

    def _endless(self, path: Path) -> None:
        """The file, then zeros, 4 KiB every 50 ms and no Content-Length: a download that never ends
        by itself (within 10 minutes). Records in ``transfers`` how much was sent and whether the
        client closed the connection."""
        data = path.read_bytes()
        transfer = type(self).transfers[self.path] = Transfer()
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        for i in range(12_000):
            chunk = data[i * 4096 : (i + 1) * 4096] or b"\0" * 4096
            try:
                self.wfile.write(chunk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                transfer.closed_by_client = True
                return
            transfer.sent += len(chunk)
            time.sleep(0.05)


@dataclass
class MediaServer:
    root: Path
    base_url: str

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def transfer(self, name: str) -> Transfer | None:
        """What was sent so far for the request of ``url(name)`` (``/endless/`` requests only)."""
        return _Handler.transfers.get(f"/{name}")


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory served over HTTP: the repo's test clips plus files generated by tests."""
    root = tmp_path_factory.mktemp("media")
    for f in DATA.iterdir():
        if f.is_file():
            (root / f.name).symlink_to(f)
    return root


@pytest.fixture(scope="session")
def media_server(media_root: Path) -> Iterator[MediaServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(media_root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield MediaServer(media_root, f"http://127.0.0.1:{server.server_address[1]}")
    server.shutdown()


@dataclass
class Service:
    base_url: str
    api_key: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    env: dict[str, str]

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"APIKey {key or self.api_key}"}

    def new_key(self, name: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "vodscribe.cli", "keys", "create", name],
            env=self.env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip().splitlines()[-1]


def start_service(
    data_dir: Path, extra_env: dict[str, str] | None = None, args: Sequence[str] = ("serve",)
) -> Service:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "VODSCRIBE_DATA_DIR": str(data_dir),
        "VODSCRIBE_PORT": str(port),
        "VODSCRIBE_ALLOW_PRIVATE_URLS": "true",
        "VODSCRIBE_HEARTBEAT_S": "1",
        "VODSCRIBE_STALE_AFTER_S": "8",
        "PYTHONUNBUFFERED": "1",
        "VODSCRIBE_LLM_MODEL": str(llm_model_file()),
        **(extra_env or {}),
    }
    log = open(data_dir / "serve.log", "wb")  # noqa: SIM115 (kept open for the process's life)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vodscribe.cli", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise RuntimeError("vodscribe serve exited:\n" + (data_dir / "serve.log").read_text())
        try:
            return httpx.get(base + "/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        eventually(healthy, timeout=60, interval=0.2, what="vodscribe serve answering /health with 200")
    except AssertionError as exc:
        stop_group(proc, grace_s=0)
        raise RuntimeError(
            "vodscribe serve did not come up:\n" + (data_dir / "serve.log").read_text()
        ) from exc
    key_file = data_dir / "admin-api-key.txt"  # only written when the database had no client yet
    key = key_file.read_text().strip() if key_file.exists() else ""
    return Service(base, key, data_dir, proc, env)


def start_worker(service: Service, *args: str) -> subprocess.Popen[bytes]:
    """A separate ``vodscribe worker`` process for ``service`` (scale-out topology)."""
    log = open(service.data_dir / "worker.log", "ab")  # noqa: SIM115 (kept open for the process's life)
    return subprocess.Popen(
        [sys.executable, "-m", "vodscribe.cli", "worker", *args], env=service.env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def stop_service(service: Service) -> None:
    stop_group(service.proc)


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``vodscribe serve`` on the embedded default (SQLite, local files, its own worker)."""
    svc = start_service(tmp_path_factory.mktemp("svc"))
    yield svc
    stop_service(svc)


def wait_for(
    client: httpx.Client, task_id: str, *, timeout: float = 120, until: tuple[str, ...] = ()
) -> dict:
    """Poll a task until it reaches one of ``until`` (default: a final status)."""
    final = until or ("SUCCESS", "FAILURE", "REVOKED")

    def reached() -> dict:
        body = client.get(f"/streaming/ai/tasks/{task_id}").json()
        assert body["status"] in final, body
        return body

    return eventually(reached, timeout=timeout, interval=0.2, what=f"task {task_id} in {final}")


@pytest.fixture
def api(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.base_url, headers=service.headers(), timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def sdk(service: Service) -> Gcore:
    """Gcore's own Python SDK, pointed at :func:`service` (no retries: a test sees every answer)."""
    return Gcore(api_key=service.api_key, base_url=service.base_url, max_retries=0)
