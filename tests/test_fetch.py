"""vodscribe.media.fetch against a real HTTP server on 127.0.0.1 (no other network access).

Downloads from the local server need ``allow_private_urls=True``, which switches the address guard off;
the guarded path is exercised by refusing private URLs, and end to end with a policy widened to
127.0.0.1 only (see ``guard_allowing_loopback``), so that redirects to other private addresses must be
refused by the guard on the hop itself.
"""

from __future__ import annotations

import io
import select
import socket
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import admit_loopback_only
from tests.waiting import eventually
from vodscribe.atomic import leftovers
from vodscribe.config import Settings
from vodscribe.errors import (
    Cancelled,
    FetchError,
    MediaError,
    NotMediaError,
    TooLargeError,
    URLNotAllowedError,
)
from vodscribe.media.fetch import USER_AGENT, DownloadCancelled, check_url, download
from vodscribe.media.probe import MediaKind

DATA = Path(__file__).parent / "data"
MP4 = (DATA / "jfk_librivox.mp4").read_bytes()
HTML = b"<!DOCTYPE html>\n<html><head><title>YouTube</title></head><body>" + b"x" * 4000 + b"</body></html>"
PLAYLIST = b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("video.mp4", MP4[:2000])
    return buf.getvalue()


STATIC: dict[str, tuple[bytes, str]] = {
    "/media/jfk_librivox.mp4": (MP4, "video/mp4"),
    "/media/ldc93s1.wav": ((DATA / "ldc93s1.wav").read_bytes(), "audio/wav"),
    "/media/multilingual_en_de.mp3": ((DATA / "multilingual_en_de.mp3").read_bytes(), "audio/mpeg"),
    "/media/tiny.mp4": (MP4[:300], "video/mp4"),  # shorter than the sniff window: still recognised
    "/watch": (HTML, "text/html; charset=utf-8"),
    "/api.json": (b'{"video": "https://example.com/v.mp4"}', "application/json"),
    "/archive.zip": (_zip_bytes(), "application/zip"),
    "/playlist.mp4": (PLAYLIST, "video/mp4"),  # lies about its type
    "/empty.mp4": (b"", "video/mp4"),
}


class _Handler(BaseHTTPRequestHandler):
    """Routes: STATIC, /status/<code>, /redirect/<n>, /redirect-to?u=, /huge, /stream?mib=, /slow,
    /held-html, /stall."""

    requests: ClassVar[list[tuple[str, str]]] = []  # (path, user agent), shared by all handlers
    # path -> (bytes sent, whether the client hung up before the body was complete), for /slow and
    # /held-html: what the server saw of a download the client cut short
    sent: ClassVar[dict[str, tuple[int, bool]]] = {}

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).requests.append((self.path, self.headers.get("User-Agent", "")))
        parts = urlsplit(self.path)
        route = parts.path
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            if route in STATIC:
                self._send(*STATIC[route])
            elif route.startswith("/status/"):
                self._send(b"error page", "text/plain", status=int(route.rsplit("/", 1)[1]))
            elif route.startswith("/redirect/"):
                hops = int(route.rsplit("/", 1)[1])
                target = f"/redirect/{hops - 1}" if hops > 1 else "/media/jfk_librivox.mp4"
                self._redirect(target)
            elif route == "/redirect-to":
                self._redirect(query["u"])
            elif route == "/huge":
                self._headers(200, "video/mp4", length=10**12)
                self.wfile.write(MP4[:4096])
            elif route == "/stream":
                self._stream(MP4[:65536] + b"\0" * (int(query["mib"]) << 20))
            elif route == "/slow":
                self._trickle(MP4)
            elif route == "/held-html":
                self._held(HTML * 100)
            elif route == "/stall":
                self._headers(200, "video/mp4", length=len(MP4))
                self.wfile.write(MP4[:1024])
                self.wfile.flush()
                time.sleep(3)
            else:
                self._send(b"not found", "text/plain", status=404)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on purpose

    def _headers(self, status: int, content_type: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self._headers(status, content_type, len(body))
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream(self, body: bytes) -> None:
        """No Content-Length: HTTP/1.0, the body ends when the connection closes."""
        self._headers(200, "video/mp4", length=None)
        for i in range(0, len(body), 65536):
            self.wfile.write(body[i : i + 65536])

    def _trickle(self, body: bytes) -> None:
        """256 bytes every 20 ms (about 12 KiB/s: the whole MP4 takes 16 s), until the client hangs up."""
        self._headers(200, "video/mp4", length=len(body))
        sent = 0
        try:
            for i in range(0, len(body), 256):
                self.wfile.write(body[i : i + 256])
                self.wfile.flush()
                sent += len(body[i : i + 256])
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):
            type(self).sent[self.path] = (sent, True)
            raise
        type(self).sent[self.path] = (sent, False)

    def _held(self, body: bytes) -> None:
        """The first 4 KiB of ``body`` at once, then nothing until the client hangs up (at most 60 s),
        then the rest: a client that waited for more than the signature would time out."""
        self._headers(200, "video/mp4", length=len(body))  # the type lies: only the bytes tell
        self.wfile.write(body[:4096])
        self.wfile.flush()
        ready, _, _ = select.select([self.connection], [], [], 60)
        try:
            hung_up = bool(ready) and not self.connection.recv(1)  # b"": the client closed
        except ConnectionResetError:
            hung_up = True
        if hung_up:
            type(self).sent[self.path] = (4096, True)
            return
        self.wfile.write(body[4096:])
        type(self).sent[self.path] = (len(body), False)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


def _settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "allow_private_urls": True,
        "fetch_max_bytes": 50 * 1024**2,
        "fetch_timeout_s": 10.0,
        "fetch_connect_timeout_s": 2.0,
        "fetch_max_redirects": 5,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _assert_no_files(dest: Path) -> None:
    assert not dest.exists()
    assert not list(leftovers(dest)), "no partial download is left"


# --- check_url ------------------------------------------------------------------------------------

REFUSED_ALWAYS = [
    "ftp://example.com/video.mp4",
    "file:///etc/passwd",
    "gopher://example.com/",
    "javascript:alert(1)",
    "//example.com/video.mp4",
    "http:///video.mp4",
    "http://user:secret@example.com/video.mp4",
    "http://user@example.com/video.mp4",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://example.com/a\nb.mp4",
    "",
    "http://example.com/" + "a" * 2100,
]

REFUSED_UNLESS_PRIVATE = [
    "http://127.0.0.1/video.mp4",
    "http://127.0.0.1:8080/video.mp4",
    "http://10.0.0.1/video.mp4",
    "http://192.168.1.10/video.mp4",
    "http://172.16.0.1/video.mp4",
    "http://100.64.0.1/video.mp4",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/video.mp4",
    "http://[::1]/video.mp4",
    "http://[::ffff:127.0.0.1]/video.mp4",
    "http://[fe80::1]/video.mp4",
    "http://[fd00::1]/video.mp4",
    "http://localhost/video.mp4",  # resolved from /etc/hosts
]


@pytest.mark.parametrize("url", REFUSED_ALWAYS + REFUSED_UNLESS_PRIVATE)
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(URLNotAllowedError) as info:
        check_url(url, allow_private=False)
    assert info.value.message


@pytest.mark.parametrize("url", REFUSED_ALWAYS)
def test_check_url_refuses_even_when_private_allowed(url: str) -> None:
    with pytest.raises(URLNotAllowedError):
        check_url(url, allow_private=True)


@pytest.mark.parametrize("url", REFUSED_UNLESS_PRIVATE)
def test_check_url_allows_private_when_configured(url: str) -> None:
    assert check_url(url, allow_private=True).startswith("http://")


def test_private_address_message_names_the_reason() -> None:
    with pytest.raises(URLNotAllowedError, match="private, loopback, link-local or cloud-metadata"):
        check_url("http://169.254.169.254/latest/meta-data/", allow_private=False)
    with pytest.raises(URLNotAllowedError, match="private"):
        check_url("http://127.0.0.1:8080/video.mp4", allow_private=False)  # not "port"
    with pytest.raises(URLNotAllowedError, match=r"http:// and https://"):
        check_url("file:///etc/passwd", allow_private=False)
    with pytest.raises(URLNotAllowedError, match="user name or password"):
        check_url("https://a:b@example.com/v.mp4", allow_private=False)


def _resolver(*addresses: str) -> Callable[..., list[tuple[int, int, int, str, tuple[object, ...]]]]:
    """A stand-in for socket.getaddrinfo, so names resolve without DNS."""

    def getaddrinfo(host: str, port: int, *_: object) -> list[tuple[int, int, int, str, tuple[object, ...]]]:
        out: list[tuple[int, int, int, str, tuple[object, ...]]] = []
        for a in addresses:
            if ":" in a:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)))
        return out

    return getaddrinfo


@pytest.mark.parametrize(
    "addresses",
    [("10.1.2.3",), ("169.254.169.254",), ("::1",), ("93.184.215.14", "192.168.0.5")],
    ids=["private", "metadata", "loopback6", "public-and-private"],
)
def test_check_url_refuses_names_resolving_to_private_addresses(addresses: tuple[str, ...]) -> None:
    with pytest.raises(URLNotAllowedError, match="private"):
        check_url("https://media.example/video.mp4", allow_private=False, resolver=_resolver(*addresses))


def test_check_url_accepts_public_name_and_normalises() -> None:
    url = check_url(
        "  HTTPS://Media.Example/Path/My Video.mp4?x=1#t=10 ",
        allow_private=False,
        resolver=_resolver("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
    )
    assert url == "https://media.example/Path/My%20Video.mp4?x=1"


def test_check_url_unresolvable_host() -> None:
    def fail(*_: object) -> list[tuple[int, int, int, str, tuple[object, ...]]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(URLNotAllowedError, match="could not be found"):
        check_url("https://no-such-host.example/v.mp4", allow_private=False, resolver=fail)


def test_check_url_refuses_non_standard_port() -> None:
    with pytest.raises(URLNotAllowedError, match="port"):
        check_url("http://media.example:6379/", allow_private=False, resolver=_resolver("93.184.215.14"))


# --- download: success ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/media/jfk_librivox.mp4", MediaKind.MP4),
        ("/media/ldc93s1.wav", MediaKind.WAV),
        ("/media/multilingual_en_de.mp3", MediaKind.MP3),
        ("/media/tiny.mp4", MediaKind.MP4),
    ],
)
def test_download(server: str, tmp_path: Path, path: str, kind: MediaKind) -> None:
    dest = tmp_path / "work" / "source.bin"
    progress: list[tuple[int, int | None]] = []
    result = download(
        server + path, dest, settings=_settings(), on_progress=lambda d, t: progress.append((d, t))
    )
    body = STATIC[path][0]
    assert result.path == dest
    assert result.kind is kind
    assert result.size == len(body) == dest.stat().st_size
    assert dest.read_bytes() == body
    assert result.content_type == STATIC[path][1]
    assert result.final_url == server + path
    assert progress[-1] == (len(body), len(body))
    assert not list(leftovers(dest)), "no partial download is left"


def test_download_sends_user_agent(server: str, tmp_path: Path) -> None:
    download(server + "/media/ldc93s1.wav?ua", tmp_path / "a.wav", settings=_settings())
    assert ("/media/ldc93s1.wav?ua", USER_AGENT) in _Handler.requests


def test_download_follows_redirects_within_limit(server: str, tmp_path: Path) -> None:
    result = download(server + "/redirect/3", tmp_path / "v.mp4", settings=_settings())
    assert result.final_url == server + "/media/jfk_librivox.mp4"
    assert result.size == len(MP4)


# --- download: refusals and failures --------------------------------------------------------------


@pytest.mark.parametrize("url", [*REFUSED_ALWAYS, *REFUSED_UNLESS_PRIVATE, "http://localhost:{port}/media/x"])
def test_download_refuses_private_urls_without_connecting(server: str, tmp_path: Path, url: str) -> None:
    port = urlsplit(server).port
    url = url.format(port=port) if "{port}" in url else url
    before = len(_Handler.requests)
    dest = tmp_path / "v.mp4"
    with pytest.raises(URLNotAllowedError):
        download(url, dest, settings=_settings(allow_private_urls=False))
    _assert_no_files(dest)
    assert len(_Handler.requests) == before


def test_download_refuses_the_local_server_by_default(server: str, tmp_path: Path) -> None:
    assert Settings.model_fields["allow_private_urls"].default is False
    before = len(_Handler.requests)
    with pytest.raises(URLNotAllowedError, match="private"):
        download(
            server + "/media/jfk_librivox.mp4",
            tmp_path / "v.mp4",
            settings=_settings(allow_private_urls=False),
        )
    assert len(_Handler.requests) == before


@pytest.mark.parametrize(
    ("code", "phrase"), [(404, "Not Found"), (403, "Forbidden"), (500, "Internal Server Error")]
)
def test_http_error_status(server: str, tmp_path: Path, code: int, phrase: str) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(FetchError) as info:
        download(f"{server}/status/{code}", dest, settings=_settings())
    assert info.value.message == f"The URL returned HTTP {code} {phrase}."
    _assert_no_files(dest)


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/watch", "HTML page"),
        ("/api.json", "JSON"),
        ("/archive.zip", "archive"),
        ("/playlist.mp4", "HLS playlist"),
        ("/empty.mp4", "empty"),
    ],
)
def test_not_media_is_refused(server: str, tmp_path: Path, path: str, words: str) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(NotMediaError, match=words):
        download(server + path, dest, settings=_settings())
    _assert_no_files(dest)


def test_html_message_is_helpful(server: str, tmp_path: Path) -> None:
    with pytest.raises(NotMediaError) as info:
        download(server + "/watch", tmp_path / "v.mp4", settings=_settings())
    assert "YouTube" in info.value.message
    assert "direct link to an MP4 file" in info.value.message


def test_html_is_refused_before_the_rest_is_downloaded(server: str, tmp_path: Path) -> None:
    # /held-html sends 4 KiB and holds back the rest until the client hangs up: the signature check
    # must refuse on those first bytes (waiting for more would end in a read timeout, not this error).
    with pytest.raises(NotMediaError, match="HTML"):
        download(server + "/held-html", tmp_path / "v.mp4", settings=_settings())
    sent, hung_up = eventually(lambda: _Handler.sent.get("/held-html"), timeout=30, what="server done")
    assert hung_up and sent == 4096 < len(HTML * 100)


def test_content_length_over_limit(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(TooLargeError, match=r"limit of 1\.0 MiB"):
        download(server + "/huge", dest, settings=_settings(fetch_max_bytes=1024**2))
    _assert_no_files(dest)


def test_streamed_body_over_limit(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(TooLargeError):
        download(server + "/stream?mib=3", dest, settings=_settings(fetch_max_bytes=1024**2))
    _assert_no_files(dest)


def test_streamed_body_under_limit(server: str, tmp_path: Path) -> None:
    result = download(server + "/stream?mib=1", tmp_path / "v.mp4", settings=_settings())
    assert result.size == 65536 + 1024**2
    assert result.kind is MediaKind.MP4


def test_too_many_redirects(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(FetchError, match="redirected too many times"):
        download(server + "/redirect/6", dest, settings=_settings(fetch_max_redirects=5))
    _assert_no_files(dest)


def test_total_time_limit(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    start = time.monotonic()
    with pytest.raises(FetchError, match="took longer than the limit of 1 s"):
        download(server + "/slow?limit", dest, settings=_settings(fetch_timeout_s=1.0))
    # The configured limit firing is the behaviour under test: not before 1 s, and (a bound loose
    # enough for a slow machine) long before the 16 s the trickled body would take.
    assert 1.0 <= time.monotonic() - start < 10
    sent, hung_up = eventually(lambda: _Handler.sent.get("/slow?limit"), timeout=30, what="server done")
    assert hung_up and sent < len(MP4)  # the client cut the download short
    _assert_no_files(dest)


def test_stalled_server(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(FetchError, match="timed out"):
        download(server + "/stall", dest, settings=_settings(fetch_timeout_s=0.5))
    _assert_no_files(dest)


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match="Could not connect"):
        download(f"http://127.0.0.1:{port}/v.mp4", tmp_path / "v.mp4", settings=_settings())


# --- download: cancellation -----------------------------------------------------------------------


def test_cancelled_before_start(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(DownloadCancelled):
        download(server + "/media/jfk_librivox.mp4", dest, settings=_settings(), should_stop=lambda: True)
    _assert_no_files(dest)


def test_cancelled_while_streaming(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "v.mp4"
    seen: list[int] = []

    def should_stop() -> bool:  # cancelled once bytes have arrived
        return bool(seen)

    with pytest.raises(Cancelled) as info:  # DownloadCancelled is a Cancelled, not a MediaError
        download(
            server + "/slow?cancel",
            dest,
            settings=_settings(),
            should_stop=should_stop,
            on_progress=lambda done, _: seen.append(done),
        )
    assert isinstance(info.value, DownloadCancelled)
    assert not isinstance(info.value, MediaError)
    assert seen and seen[-1] < len(MP4)  # it was under way
    # the cancel took effect at once: the client hung up long before the 16 s body was through
    sent, hung_up = eventually(lambda: _Handler.sent.get("/slow?cancel"), timeout=30, what="server done")
    assert hung_up and sent < len(MP4)
    _assert_no_files(dest)


# --- the guarded client end to end ----------------------------------------------------------------


@pytest.fixture
def guard_allowing_loopback(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """allow_private_urls=False (ssrfguard's client), with only 127.0.0.1 (any port) permitted."""
    admit_loopback_only(monkeypatch)
    return _settings(allow_private_urls=False)


def test_guarded_client_downloads(server: str, tmp_path: Path, guard_allowing_loopback: Settings) -> None:
    result = download(server + "/redirect/2", tmp_path / "v.mp4", settings=guard_allowing_loopback)
    assert result.size == len(MP4)
    assert result.kind is MediaKind.MP4


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/video.mp4",
        "http://[::1]/video.mp4",
        "http://127.0.0.2/video.mp4",
        "file:///etc/passwd",
    ],
)
def test_guard_rechecks_every_redirect(
    server: str, tmp_path: Path, guard_allowing_loopback: Settings, target: str
) -> None:
    dest = tmp_path / "v.mp4"
    with pytest.raises(URLNotAllowedError):
        download(f"{server}/redirect-to?u={target}", dest, settings=guard_allowing_loopback)
    _assert_no_files(dest)


def test_guard_counts_redirects(server: str, tmp_path: Path, guard_allowing_loopback: Settings) -> None:
    with pytest.raises(FetchError, match="redirected too many times"):
        download(server + "/redirect/6", tmp_path / "v.mp4", settings=guard_allowing_loopback)
