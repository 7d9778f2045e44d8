"""``origin_http_headers``: checked strictly, stored with the video, sent with its download to the
origin's own scheme, host and port only (every hop there, every attempt), never shown in the API, a
log or an error. Real HTTP on 127.0.0.1 (two servers: another port is another origin, and so is
``localhost``), real ffmpeg, real SQLite."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from tests.conftest import admit_loopback_only, in_process_api, tone_video
from vodscribe.config import Settings
from vodscribe.db.session import session_scope
from vodscribe.db.statuses import VideoStatus
from vodscribe.db.tables import Video
from vodscribe.errors import FetchError
from vodscribe.media import fetch
from vodscribe.media.fetch import download, parse_headers
from vodscribe.worker import video_runner
from vodscribe.worker.video_runner import run_video

SECRET = "Bearer s3cr3t-t0ken-abc"
HEADER = f"Authorization: {SECRET}"


@dataclass
class Origin:
    """A media server that answers 401 unless ``Authorization`` is ``SECRET``; records what each
    request carried. ``/media`` the file, ``/to?u=URL`` a redirect."""

    media: bytes
    seen: list[tuple[str, str | None, str | None]] = field(default_factory=list)  # path, auth, x-extra
    base: str = ""

    def auth_on(self, path: str) -> list[str | None]:
        return [auth for p, auth, _ in self.seen if p.startswith(path)]


@contextlib.contextmanager
def _serve(origin: Origin) -> Iterator[ThreadingHTTPServer]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            origin.seen.append((self.path, auth, self.headers.get("X-Extra")))
            parts = urlsplit(self.path)
            if parts.path == "/to":
                self.send_response(302)
                self.send_header("Location", parse_qs(parts.query)["u"][0])
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            ok = auth == SECRET
            body = origin.media if ok else b"unauthorised"
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "video/mp4" if ok else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    origin.base = f"http://127.0.0.1:{httpd.server_port}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 2 s 320x240 MP4 with a tone, made with ffmpeg."""
    return tone_video(tmp_path_factory.mktemp("media") / "clip.mp4", 2).read_bytes()


@pytest.fixture
def origin(media: bytes) -> Iterator[Origin]:
    found = Origin(media)
    with _serve(found):
        yield found


@pytest.fixture
def other(media: bytes) -> Iterator[Origin]:
    """Another origin: the same server code on another port."""
    found = Origin(media)
    with _serve(found):
        yield found


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"allow_private_urls": True, "fetch_timeout_s": 20.0, **overrides}
    return Settings(data_dir=tmp_path, **values)


@pytest.fixture(params=["plain", "guarded"])
def settings(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Both download clients: the plain one (private URLs allowed) and ssrfguard's, whose policy
    here admits 127.0.0.1 only (as in test_fetch)."""
    if request.param == "plain":
        return _settings(tmp_path)
    admit_loopback_only(monkeypatch)
    return _settings(tmp_path, allow_private_urls=False)


# --- checking the text ------------------------------------------------------------------------------


def test_parse_headers_accepts_gcore_lines() -> None:
    assert parse_headers("Authorization: Bearer ABC") == {"Authorization": "Bearer ABC"}
    assert parse_headers("X-Api-Key:k1\r\nCookie: a=b; c=d\n") == {"X-Api-Key": "k1", "Cookie": "a=b; c=d"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Authorization Bearer ABC", "Name: value"),
        ("Bad Name: x", "Name: value"),
        ("Authorization: Bearer\rX-Injected: 1", "printable ASCII"),
        ("Authorization: caf\u00e9", "printable ASCII"),
        ("Authorization:", "empty"),
        ("Host: example.com", "Host header cannot be set"),
        ("content-length: 5", "cannot be set"),
        ("Transfer-Encoding: chunked", "cannot be set"),
        ("Connection: close", "cannot be set"),
        ("Proxy-Authorization: Basic x", "cannot be set"),
        ("Range: bytes=0-1", "cannot be set"),
        ("A: 1\nB: 2\n\nC: 3", "line 3"),
        ("A: 1\na: 2", "given twice"),
        ("\n".join(f"H{i}: v" for i in range(11)), "too many lines"),
        ("A: " + "x" * 9000, "too long"),
    ],
)
def test_parse_headers_refuses(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words) as err:
        parse_headers(text)
    assert "Bearer" not in str(err.value) and "example.com" not in str(err.value)


# --- the download -----------------------------------------------------------------------------------


def test_the_origin_needs_the_header_and_gets_it(origin: Origin, settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="401"):
        download(origin.base + "/media", tmp_path / "a.mp4", settings=settings)
    got = download(
        origin.base + "/media", tmp_path / "b.mp4", settings=settings, headers={"Authorization": SECRET}
    )
    assert got.path.read_bytes() == origin.media
    assert origin.auth_on("/media") == [None, SECRET]


def test_same_origin_redirects_keep_the_header(origin: Origin, settings: Settings, tmp_path: Path) -> None:
    hops = f"{origin.base}/to?u={origin.base}/to?u=/media"  # absolute, then relative: same origin
    got = download(
        hops, tmp_path / "v.mp4", settings=settings, headers={"Authorization": SECRET, "X-Extra": "1"}
    )
    assert got.size == len(origin.media)
    assert [(auth, extra) for _, auth, extra in origin.seen] == [(SECRET, "1")] * 3


def test_a_redirect_to_another_port_does_not_get_the_header(
    origin: Origin, other: Origin, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    headers = {"Authorization": SECRET, "X-Extra": "custom credential"}
    with pytest.raises(FetchError, match="401") as err:
        download(
            f"{origin.base}/to?u={other.base}/media", tmp_path / "v.mp4", settings=settings, headers=headers
        )
    assert origin.seen[0][1:] == (SECRET, "custom credential")
    assert other.seen == [("/media", None, None)]  # neither Authorization nor the custom header
    assert SECRET not in str(err.value) and SECRET not in caplog.text


def test_back_at_the_origin_the_header_is_sent_again(
    origin: Origin, other: Origin, settings: Settings, tmp_path: Path
) -> None:
    """As curl does: the header belongs to the origin of origin_url, whichever hop reaches it."""
    url = f"{origin.base}/to?u={other.base}/to?u={origin.base}/media"
    got = download(url, tmp_path / "v.mp4", settings=settings, headers={"Authorization": SECRET})
    assert got.size == len(origin.media)
    assert [auth for _, auth, _ in other.seen] == [None]
    assert origin.auth_on("/media") == [SECRET]


def test_another_host_name_is_another_origin(origin: Origin, tmp_path: Path) -> None:
    """localhost and 127.0.0.1 are the same server but not the same origin (plain client: the
    guarded one admits no names that may resolve to ::1 here)."""
    port = urlsplit(origin.base).port
    url = f"{origin.base}/to?u=http://localhost:{port}/media"
    with pytest.raises(FetchError, match="401"):
        download(url, tmp_path / "v.mp4", settings=_settings(tmp_path), headers={"Authorization": SECRET})
    assert [auth for _, auth, _ in origin.seen] == [SECRET, None]


def test_a_message_quoting_a_header_value_is_redacted() -> None:
    """No library quotes a checked value today; if one did, the video's error would not show it."""
    with pytest.raises(FetchError) as err, fetch._redacted([SECRET]):
        raise FetchError(f"The download failed: header {SECRET!r} refused.")
    assert str(err.value) == "The download failed: header '[redacted]' refused."
    with pytest.raises(FetchError, match="HTTP 401"), fetch._redacted([]):  # short values are not secrets
        raise FetchError("The URL returned HTTP 401.")


# --- the API and the media job ----------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = _settings(tmp_path)
    with in_process_api(settings, "c") as c:
        yield c, settings


def test_invalid_headers_are_refused_with_rails_errors(api: tuple[TestClient, Settings]) -> None:
    client, _ = api
    for value, words in [("Host: evil.example", "Host header cannot be set"), ("nope", "Name: value")]:
        r = client.post("/streaming/videos", json={"video": {"name": "v", "origin_http_headers": value}})
        assert r.status_code == 422, r.text
        [message] = r.json()["errors"]["origin_http_headers"]
        assert words in message
    r = client.post("/streaming/videos", json={"video": {"name": "v", "origin_http_headers": 5}})
    assert r.json() == {"errors": {"origin_http_headers": ["must be a string"]}}
    assert client.get("/streaming/videos").json() == []


def test_the_media_job_sends_the_header_on_every_attempt_and_never_shows_it(
    api: tuple[TestClient, Settings],
    origin: Origin,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, settings = api
    caplog.set_level(logging.DEBUG)
    body = {"name": "private", "origin_url": origin.base + "/media", "origin_http_headers": HEADER,
            "auto_transcribe_audio_language": "disable"}  # fmt: skip
    created = client.post("/streaming/videos", json={"video": body})
    assert created.status_code == 200 and SECRET not in created.text
    video_id = created.json()["id"]
    with session_scope(settings.db_url) as s:
        stored = s.get(Video, video_id)
        assert stored is not None and stored.origin_http_headers == HEADER
    real = video_runner.transcode
    runs: list[int] = []

    def crash_the_first_time(*args: Any, **kwargs: Any) -> Any:
        runs.append(1)
        if len(runs) == 1:
            raise RuntimeError("the worker's disk hiccuped")
        return real(*args, **kwargs)

    monkeypatch.setattr(video_runner, "transcode", crash_the_first_time)
    assert run_video(settings, video_id) == "retry"
    assert run_video(settings, video_id) == VideoStatus.READY
    assert origin.auth_on("/media") == [SECRET, SECRET]  # the retry downloaded with it too
    for answer in (client.get(f"/streaming/videos/{video_id}"), client.get("/streaming/videos")):
        assert answer.status_code == 200 and SECRET not in answer.text
        assert "origin_http_headers" not in answer.text
    patched = client.patch(f"/streaming/videos/{video_id}", json={"origin_http_headers": "X-A: b"})
    assert patched.status_code == 200 and "origin_http_headers" not in patched.text
    with session_scope(settings.db_url) as s:
        stored = s.get(Video, video_id)
        assert stored is not None and stored.origin_http_headers == HEADER  # create-only, as origin_url
    assert SECRET not in caplog.text


def test_a_failed_download_says_why_without_the_header(
    api: tuple[TestClient, Settings], origin: Origin, other: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    client, settings = api
    caplog.set_level(logging.DEBUG)
    body = {
        "name": "moved",
        "origin_url": f"{origin.base}/to?u={other.base}/media",
        "origin_http_headers": HEADER,
    }
    video_id = client.post("/streaming/videos", json=body).json()["id"]
    assert run_video(settings, video_id) == VideoStatus.ERROR
    video = client.get(f"/streaming/videos/{video_id}").json()
    assert video["status"] == "empty" and "401" in video["error"]
    assert SECRET not in str(video) and SECRET not in caplog.text
    assert [auth for _, auth, _ in other.seen] == [None]
