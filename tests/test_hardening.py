"""Bad input and hostile clients: every answer is a clear 4xx (or a 503 that says why), never a 500,
and nothing a request sends can make the server use unbounded memory or time.

In-process where possible (FastAPI TestClient, real SQLite, filesystem broker, no worker); a real
uvicorn server on 127.0.0.1 where real concurrency matters. No worker runs here, so nothing is fetched.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import imageio_ffmpeg
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.conftest import REQUIRE_SERVICES, free_port
from tests.waiting import eventually
from vodscribe.api.app import create_app
from vodscribe.config import Settings
from vodscribe.db.session import migrate, session_scope, sql_engine
from vodscribe.db.tables import AITask, Video
from vodscribe.errors import TooLongError, URLNotAllowedError
from vodscribe.media.fetch import check_url
from vodscribe.media.probe import decode_audio, probe
from vodscribe.media.public_address import is_public
from vodscribe.services.clients import create_client

URL = "https://93.184.215.14/video.mp4"  # a public address literal: no DNS needed offline
VTT = "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello\n"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    s = Settings(data_dir=tmp_path / "data", rate_limit_per_s=0)
    migrate(s.db_url)
    return s


@pytest.fixture
def key(settings: Settings) -> str:
    with session_scope(settings.db_url) as s:
        _, k = create_client(s, "a")
    return k


@pytest.fixture
def client(settings: Settings, key: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings), headers={"Authorization": f"APIKey {key}"}) as c:
        yield c


def _gcore_error(r: httpx.Response) -> None:
    body = r.json()
    assert isinstance(body, dict) and ("error" in body or "errors" in body), r.text


# --- 1. integers past what the database holds ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/streaming/videos/99999999999999999999", None),
        ("GET", "/streaming/videos/-99999999999999999999", None),
        ("GET", "/streaming/videos?page=4611686018427387904", None),
        ("GET", "/streaming/ai/tasks?page=4611686018427387904", None),
        ("GET", "/streaming/videos?client_user_id=99999999999999999999", None),
        ("GET", "/streaming/videos?id=99999999999999999999", None),
        ("GET", "/streaming/videos?id=1,2147483648", None),
        ("GET", "/streaming/videos?search=99999999999999999999", None),
        ("POST", "/streaming/videos", {"name": "a", "client_user_id": 99999999999999999999}),
        ("POST", "/streaming/videos", {"video": {"name": "a", "priority": 2**70}}),
        ("POST", "/streaming/videos/18446744073709551615/subtitles", {"language": "eng", "vtt": VTT}),
        ("GET", "/streaming/videos/1/subtitles/18446744073709551615", None),
        ("DELETE", "/streaming/videos/18446744073709551615", None),
    ],
)
def test_huge_integers_are_refused_not_500(client: TestClient, method: str, url: str, body: object) -> None:
    r = client.request(method, url, json=body)
    assert r.status_code in (200, 400, 404, 422), (r.status_code, r.text)
    if r.status_code != 200:
        _gcore_error(r)
    else:  # a search for a number that is no id finds nothing
        assert r.json() == []


# --- 2. the public file route ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/videos/1_abc/x%00.mp4",
        "/videos/1_abc%00/x.mp4",
        "/videos/1_abc/" + "a" * 300 + ".mp4",
        "/videos/1_abc/" + "/".join(["b" * 200] * 30) + ".mp4",
        "/videos/" + "1" * 400 + "_abc/x.mp4",
        "/videos/1_abc/../../vodscribe.db",
        "/videos/1_abc/%2e%2e/x.mp4",
        "/videos/1_abc/.health",
        "/videos/1_%00/embed",
    ],
)
def test_bad_file_names_are_404(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, (path, r.status_code, r.text)


def test_a_real_file_with_a_long_query_name_is_404_too(client: TestClient, settings: Settings) -> None:
    video = client.post("/streaming/videos", json={"name": "v"}).json()
    folder = settings.data_dir / "videos" / f"{video['client_id']}_{video['slug']}"
    folder.mkdir(parents=True)
    (folder / "vod240p.mp4").write_bytes(b"\0" * 10)
    base = f"/videos/{video['client_id']}_{video['slug']}"
    assert client.get(f"{base}/vod240p.mp4").status_code == 200
    assert client.get(f"{base}/vod240p.mp4%00.mp4").status_code == 404
    assert client.get(f"{base}/{'x' * 5000}.mp4").status_code == 404


# --- 3. media longer than the limit (a decompression bomb) -----------------------------------------


def _ffmpeg(out: Path, *args: str) -> Path:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]
    subprocess.run([*cmd, str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def silent_flac(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten minutes of silence: a few kilobytes that decode to 38 MB of samples."""
    out = tmp_path_factory.mktemp("bomb") / "silence.flac"
    return _ffmpeg(out, "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", "600", "-c:a", "flac")


def _lie_about_length(flac: Path, out: Path, samples: int) -> Path:
    """A copy whose STREAMINFO claims ``samples`` samples (0 = unknown): the header lies."""
    data = bytearray(flac.read_bytes())
    assert data[:4] == b"fLaC"
    # STREAMINFO follows the 4-byte marker and a 4-byte block header; total samples are the low 36
    # bits of the 8 bytes at offset 10 of the block (after sample rate, channels, bits per sample).
    at = 8 + 10
    (packed,) = struct.unpack(">Q", bytes(data[at : at + 8]))
    packed = (packed & ~((1 << 36) - 1)) | samples
    data[at : at + 8] = struct.pack(">Q", packed)
    out.write_bytes(bytes(data))
    return out


def test_media_past_the_limit_is_refused_by_its_header(silent_flac: Path) -> None:
    info = probe(silent_flac)
    assert info.duration == pytest.approx(600, abs=1)
    with pytest.raises(TooLongError, match=r"longer than the limit of 5 min 00 s \(it lasts 10 min 00 s\)"):
        decode_audio(silent_flac, info, max_seconds=300)
    assert len(decode_audio(silent_flac, info, max_seconds=900)) == 600 * 16000


@pytest.mark.parametrize("claimed", [16000, 160000])  # "one second", "ten seconds"
def test_media_past_the_limit_is_stopped_while_decoding(
    silent_flac: Path, tmp_path: Path, claimed: int
) -> None:
    liar = _lie_about_length(silent_flac, tmp_path / "liar.flac", claimed)
    info = probe(liar)
    assert info.duration < 300  # the header does not give it away
    with pytest.raises(TooLongError, match="longer than the limit of 5 min 00 s"):
        decode_audio(liar, info, max_seconds=300)


def test_a_video_past_the_limit_is_not_transcoded(tmp_path: Path) -> None:
    from vodscribe.media.transcode import transcode

    clip = _ffmpeg(
        tmp_path / "long.mp4",
        *("-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-f", "lavfi", "-i", "anullsrc=r=16000"),
        *("-t", "8", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"),
    )
    with pytest.raises(TooLongError, match="longer than the limit of 5 s"):
        transcode(clip, probe(clip), tmp_path / "out", max_seconds=5)
    assert not any((tmp_path / "out").glob("*.mp4"))


@pytest.mark.slow  # runs an AI task in this process: the Whisper model loads
def test_an_ai_task_on_a_bomb_fails_with_the_reason(silent_flac: Path, tmp_path: Path) -> None:
    from tests.conftest import _Handler
    from vodscribe.worker.ai_task_runner import run_task

    settings = Settings(data_dir=tmp_path, allow_private_urls=True, max_media_duration_s=300)
    migrate(settings.db_url)
    from functools import partial
    from http.server import ThreadingHTTPServer

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(silent_flac.parent)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with session_scope(settings.db_url) as s:
            owner, _ = create_client(s, "c")
            url = f"http://127.0.0.1:{server.server_address[1]}/{silent_flac.name}"
            task = AITask(client_id=owner.id, status="PENDING", task_data={"url": url})
            s.add(task)
            s.flush()
            task_id = task.id
        assert run_task(settings, task_id) == "FAILURE"
    finally:
        server.shutdown()
    with session_scope(settings.db_url) as s:
        done = s.get(AITask, task_id)
        assert done is not None and done.result is not None
        assert (
            done.result["error"] == "The media is longer than the limit of 5 min 00 s (it lasts 10 min 00 s)."
        )


# --- 4. bounded text fields and pages --------------------------------------------------------------


def test_free_text_fields_are_bounded(client: TestClient) -> None:
    r = client.post("/streaming/videos", json={"name": "a", "description": "d" * (7 * 1024 * 1024)})
    assert r.status_code == 422
    assert r.json() == {"errors": {"description": ["is too long (maximum is 4096 characters)"]}}
    r = client.post("/streaming/videos", json={"name": "n" * 1025})
    assert r.json() == {"errors": {"name": ["is too long (maximum is 1024 characters)"]}}
    r = client.post("/streaming/videos", json={"name": "a\x00b"})
    assert r.status_code == 422 and "NUL" in r.json()["errors"]["name"][0]
    for field, size in (("client_entity_data", 4097), ("client_user_id", 257), ("url", 4097)):
        body = {"url": URL, field: "x" * size}
        r = client.post("/streaming/ai/tasks", json=body)
        assert r.status_code == 400 and field in r.json()["error"], (field, r.text)
    video = client.post("/streaming/videos", json={"name": "a"}).json()
    r = client.post(
        f"/streaming/videos/{video['id']}/subtitles", json={"name": "x" * 513, "language": "eng", "vtt": VTT}
    )
    assert r.status_code == 422 and r.json()["status"] == 422
    assert client.get("/streaming/videos?search=" + "s" * 2000).status_code == 400


def test_a_list_page_is_bounded_in_bytes(client: TestClient) -> None:
    big = {"name": "n" * 1024, "description": "d" * 4096, "origin_url": None}
    for _ in range(30):
        assert client.post("/streaming/videos", json={"video": big}).status_code == 200
    r = client.get("/streaming/videos?per_page=30")
    assert len(r.json()) == 30
    # Every field is bounded, so a page is too: here under 8 KB a video (was 7 MB a video).
    assert len(r.content) < 30 * 8 * 1024


def test_subtitles_per_video_are_bounded(client: TestClient, settings: Settings) -> None:
    from vodscribe.services.subtitles import MAX_SUBTITLE_TEXT_PER_VIDEO, MAX_SUBTITLES

    video = client.post("/streaming/videos", json={"name": "a"}).json()
    base = f"/streaming/videos/{video['id']}/subtitles"
    cue = "00:00:01.000 --> 00:00:02.000\n" + "x" * 300 + "\n\n"  # under the cue bounds: bytes count here
    big = "WEBVTT\n\n" + cue * ((4 * 1024 * 1024) // len(cue))
    made = 0
    while True:
        r = client.post(base, json={"language": "eng", "vtt": big})
        if r.status_code != 200:
            break
        made += 1
    assert r.status_code == 422 and "at most" in r.json()["error"]
    assert made * len(big) <= MAX_SUBTITLE_TEXT_PER_VIDEO < (made + 1) * len(big)
    other = client.post("/streaming/videos", json={"name": "b"}).json()
    base = f"/streaming/videos/{other['id']}/subtitles"
    codes = [
        client.post(base, json={"language": "eng", "vtt": VTT}).status_code for _ in range(MAX_SUBTITLES + 1)
    ]
    assert codes == [200] * MAX_SUBTITLES + [422]
    assert len(client.get(base).json()) == MAX_SUBTITLES


# --- 5. the public embed page reads no subtitle text -----------------------------------------------


def test_the_embed_page_does_not_load_subtitle_texts(client: TestClient, settings: Settings) -> None:
    video = client.post("/streaming/videos", json={"name": "a"}).json()
    for lang in ("eng", "fre"):
        client.post(f"/streaming/videos/{video['id']}/subtitles", json={"language": lang, "vtt": VTT})
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    engine = sql_engine(settings.db_url)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        page = client.get(f"/videos/{video['client_id']}_{video['slug']}/embed")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert page.status_code == 200 and "English" in page.text and "French" in page.text
    assert any("subtitles" in s for s in statements)
    assert not any("subtitles.vtt" in s for s in statements), statements


# --- 6. concurrent PATCH and DELETE of one video ---------------------------------------------------


@pytest.fixture
def live_server(settings: Settings, key: str) -> Iterator[httpx.Client]:
    """The app on a real uvicorn server on 127.0.0.1 (its thread pool runs requests at once)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    eventually(lambda: server.started, timeout=30, what="uvicorn started")
    with httpx.Client(base_url=base, headers={"Authorization": f"APIKey {key}"}, timeout=30) as c:
        yield c
    server.should_exit = True
    thread.join(timeout=10)


def test_concurrent_patch_and_delete_never_500(live_server: httpx.Client) -> None:
    seen: set[int] = set()
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i in range(40):
            video = live_server.post("/streaming/videos", json={"name": f"v{i}"}).json()
            url = f"/streaming/videos/{video['id']}"
            calls = [
                pool.submit(live_server.patch, url, json={"name": f"w{i}", "description": "d"}),
                pool.submit(live_server.delete, url),
                pool.submit(live_server.patch, url, json={"priority": 1}),
                pool.submit(live_server.delete, url),
                pool.submit(live_server.post, f"{url}/subtitles", json={"language": "eng", "vtt": VTT}),
            ]
            for call in calls:
                r = call.result()
                assert r.status_code in (200, 204, 404), (r.status_code, r.text)
                seen.add(r.status_code)
            assert live_server.get(url).status_code == 404
    assert {204, 404} <= seen


# --- 7. user URLs reach globally routable unicast addresses only -----------------------------------

REFUSED = [
    "::ffff:0:7f00:1",  # SIIT form of 127.0.0.1
    "::ffff:0:a9fe:a9fe",  # SIIT form of 169.254.169.254
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:7f00:1",
    "::ffff:10.0.0.1",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "64:ff9b::7f00:1",  # NAT64 of loopback
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "64:ff9b:1::a00:1",  # local-use NAT64 of 10.0.0.1
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
    "::1:2:3:4",
    "::1",
    "::",
    "4000::1",
    "8000::1",
    "e000::1",
    "fe00::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "ff02::1",
    "2001:db8::1",  # documentation
    "100::1",  # discard-only
]
ACCEPTED = ["2606:4700:4700::1111", "2a00:1450:4001:82a::200e", "64:ff9b::808:808", "2002:808:808::1"]


@pytest.mark.parametrize("address", REFUSED)
def test_non_global_ipv6_is_refused(address: str, client: TestClient) -> None:
    assert not is_public(address)
    url = f"http://[{address}]/x.mp4"
    with pytest.raises(URLNotAllowedError, match="only public internet addresses"):
        check_url(url, allow_private=False)
    r = client.post("/streaming/ai/tasks", json={"url": url})
    assert r.status_code == 400 and "public internet" in r.json()["error"]
    r = client.post("/streaming/videos", json={"name": "v", "origin_url": url})
    assert r.status_code == 422 and "public internet" in r.json()["errors"]["origin_url"][0]


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "100.64.0.1", "224.0.0.1", "240.0.0.1", "0.0.0.0"]
)
def test_non_global_ipv4_is_refused(address: str) -> None:
    assert not is_public(address)
    with pytest.raises(URLNotAllowedError):
        check_url(f"http://{address}/x.mp4", allow_private=False)


@pytest.mark.parametrize("address", ACCEPTED)
def test_global_unicast_is_accepted(address: str) -> None:
    # Checked without fetching: no worker runs, and this test connects nowhere.
    assert is_public(address)
    assert check_url(f"http://[{address}]/x.mp4", allow_private=False) == f"http://[{address}]/x.mp4"


# --- 8. the rate limit is the configured rate, in the data directory and in Redis ------------------


def _allowed_in(client: TestClient, seconds: float) -> tuple[int, float]:
    allowed, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        if client.get("/streaming/ai/tasks").status_code == 200:
            allowed += 1
    return allowed, time.monotonic() - start


def _redis_url() -> str:
    import os

    import redis

    url = os.environ.get("VODSCRIBE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_timeout=1).ping()
    except Exception as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"Redis is required here but unreachable: {exc}")
        pytest.skip(f"Redis not reachable: {exc}")
    return url


@pytest.mark.parametrize("storage", ["file", pytest.param("redis", marks=pytest.mark.redis)])
def test_the_rate_limit_holds_the_configured_rate(settings: Settings, key: str, storage: str) -> None:
    broker = _redis_url() if storage == "redis" else None
    limited = Settings(data_dir=settings.data_dir, rate_limit_per_s=5, rate_limit_burst=10, broker_url=broker)
    with TestClient(create_app(limited), headers={"Authorization": f"APIKey {key}"}) as c:
        allowed, elapsed = _allowed_in(c, 4.0)
    # At most the burst at once and then the rate: burst + rate * elapsed. The old Redis counter let
    # a whole burst through every second (10/s here, twice the rate).
    assert allowed <= 10 + 5 * elapsed, (allowed, elapsed)
    assert allowed >= 5 * (elapsed - 2), (allowed, elapsed)


_HITS = """
import sys
from pathlib import Path
from vodscribe.api.rate_limit import MovingWindow, window_for
from vodscribe.api.rate_limit_sqlite import SQLiteWindowStorage
limiter = MovingWindow(SQLiteWindowStorage(Path(sys.argv[1])), window_for(0.1, 10))
print(sum(limiter.hit(7) == 0 for _ in range(40)))
"""


def test_api_processes_share_one_count(tmp_path: Path) -> None:
    """Two processes on one data directory (the embedded default's API processes) grant one client its
    burst once between them, not once each."""
    path = tmp_path / "rate-limits.sqlite"
    runs = [
        subprocess.Popen([sys.executable, "-c", _HITS, str(path)], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    granted = [int(run.communicate(timeout=120)[0]) for run in runs]
    assert sum(granted) == 10, granted
    # A process started after them (a restarted server) finds the window still full.
    later = subprocess.run(
        [sys.executable, "-c", _HITS, str(path)], capture_output=True, text=True, check=True
    )
    assert later.stdout.strip() == "0"


# --- 10. health that tells the truth; nothing acknowledged that is not queued ----------------------


def test_health_reports_each_part(client: TestClient, settings: Settings) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}
    assert client.get("/health/live").status_code == 200


def test_a_task_that_cannot_be_queued_is_not_acknowledged(client: TestClient, settings: Settings) -> None:
    shutil.rmtree(settings.broker_dir / "queue")
    (settings.broker_dir / "queue").write_text("the broker's folder is gone")
    health = client.get("/health")
    assert health.status_code == 503 and health.json()["checks"]["broker"].startswith("unavailable")
    r = client.post("/streaming/ai/tasks", json={"url": URL})
    assert r.status_code == 503 and r.json() == {"error": "The task queue is unavailable; try again later."}
    assert r.headers["retry-after"]
    r = client.post("/streaming/videos", json={"name": "v", "origin_url": URL})
    assert r.status_code == 503 and r.json()["status"] == 503
    with session_scope(settings.db_url) as s:
        assert s.query(AITask).count() == 0 and s.query(Video).count() == 0, "nothing half-written"


def test_with_the_data_directory_gone_nothing_is_acknowledged(client: TestClient, settings: Settings) -> None:
    assert client.get("/health").status_code == 200
    shutil.rmtree(settings.data_dir)
    health = client.get("/health")
    assert health.status_code == 503
    checks = health.json()["checks"]
    assert all(value.startswith("unavailable") for value in checks.values()), checks
    r = client.post("/streaming/ai/tasks", json={"url": URL})
    assert r.status_code == 503, r.text
    assert client.get("/streaming/videos").status_code == 503


# --- 11. protocol details --------------------------------------------------------------------------


def test_405_says_what_is_allowed_and_get_answers_head(client: TestClient) -> None:
    r = client.put("/streaming/videos")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD, POST"
    r = client.request("TRACE", "/streaming/ai/tasks/00000000-0000-0000-0000-000000000000")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    get = client.get("/streaming/videos")
    head = client.head("/streaming/videos")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == get.headers["content-length"]
    assert head.headers["x-total-count"] == get.headers["x-total-count"]
    assert client.head("/streaming/ai/tasks").status_code == 200
    assert client.head("/health").status_code == 200
    assert client.head("/streaming/videos/12345").status_code == 404


def test_search_wildcards_are_literal(client: TestClient) -> None:
    for name in ("plain", "50% off", "snake_case"):
        client.post("/streaming/videos", json={"name": name})
    found = {
        q: [v["name"] for v in client.get("/streaming/videos", params={"search": q}).json()] for q in "_%"
    }
    assert found == {"_": ["snake_case"], "%": ["50% off"]}
    client.post("/streaming/ai/tasks", json={"url": URL, "client_entity_data": "100%"})
    client.post("/streaming/ai/tasks", json={"url": URL})
    tasks = client.get("/streaming/ai/tasks", params={"search": "%"}).json()["results"]
    assert [t["task_data"].get("client_entity_data") for t in tasks] == ["100%"]
    assert client.get("/streaming/ai/tasks", params={"search": "_"}).json()["count"] == 2  # task_name


def test_no_dns_was_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests use address literals only: nothing here asks a resolver."""
    calls: list[object] = []
    real = socket.getaddrinfo

    def spy(host: object, *args: object, **kwargs: object) -> object:
        calls.append(host)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", spy)
    check_url(URL, allow_private=False)
    assert calls == []


# --- 9. the embedded worker dies with its server ---------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has exited already


@pytest.mark.slow  # a real `vodscribe serve`, whose worker loads the Whisper model
def test_the_embedded_worker_dies_with_the_server_even_on_sigkill(tmp_path: Path) -> None:
    import os
    import re
    import signal

    from tests.conftest import start_service, stop_service

    svc = start_service(tmp_path)
    try:

        def started() -> list[int]:
            found = re.findall(r"worker started \(pid (\d+)\)", (tmp_path / "serve.log").read_text())
            return [int(pid) for pid in found] if len(found) == 2 else []

        # Two: the media/ASR worker and the webhook worker.
        workers = eventually(started, timeout=60, what="both workers' pids in the log")
        assert all(_alive(worker) for worker in workers)
        os.kill(svc.proc.pid, signal.SIGKILL)  # no chance to stop its workers itself
        eventually(lambda: not any(map(_alive, workers)), timeout=60, what="the orphaned workers gone")
    finally:
        stop_service(svc)


@pytest.mark.parametrize("secret", ["", "short"])
def test_an_empty_or_short_server_key_is_refused(tmp_path: Path, secret: str) -> None:
    """An unset variable passed on by a compose file (VODSCRIBE_UPLOAD_SECRET=) must not become a
    key that signs upload tokens for anyone."""
    from vodscribe.keys import server_key

    with pytest.raises(ValueError, match="shorter than 16 bytes"):  # when the settings are read
        Settings(data_dir=tmp_path, upload_secret=secret)
    assert server_key(Settings(data_dir=tmp_path, upload_secret="x" * 16)) == b"x" * 16
