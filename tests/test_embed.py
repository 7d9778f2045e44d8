"""The embed player page (``iframe_url``): rendering, CSP, its static files, and real playback.

The browser tests build a real HLS rendition (H.264/AAC MPEG-TS from ``jfk_librivox.mp4``) with two
WebVTT subtitle renditions, serve it with the page and ``vodscribe/api/static`` from a local HTTP
server, and play it in headless Chromium (Debian's ``chromium``) driven over the DevTools Protocol.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import av
import imageio_ffmpeg
import pytest

from tests.browser import Page, chromium_page, dump_dom, require_chromium
from vodscribe.api.embed import EMBED_CSP, EmbedSubtitle, embed_csp, render_embed_page

DATA = Path(__file__).parent / "data"
STATIC = Path(__file__).parent.parent / "vodscribe" / "api" / "static"
PLAYER_JS = STATIC / "embed" / "player.js"
PLAYER_CSS = STATIC / "embed" / "player.css"
EN_TEXT = "And so my fellow Americans"
DE_TEXT = "Und so, meine amerikanischen Mitbürger"
SUBTITLES = [EmbedSubtitle("English", "en", default=True), EmbedSubtitle("Deutsch", "de")]


# --- parsing helpers ---------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


def _config(page: str) -> dict[str, Any]:
    [(_, text)] = [(a, t) for a, t in _parse(page).scripts if a.get("id") == "embed-config"]
    return dict(json.loads(text))


def _render(**kw: object) -> str:
    args: dict[str, Any] = {
        "title": "Talk", "hls_url": "/videos/1/master.m3u8", "subtitles": SUBTITLES, "poster_url": None,
    }  # fmt: skip
    args.update(kw)
    return render_embed_page(**args)


# --- unit tests: rendering, escaping, CSP, vendored hls.js ---------------------------------------


def test_page_structure() -> None:
    page = _render(sub_lang="en", autoplay=True, muted=True, poster_url="/videos/1/poster.jpg")
    parsed = _parse(page)
    tags = dict((t, a) for t, a in parsed.tags)
    video = tags["video"]
    assert {"controls", "playsinline", "muted", "autoplay"} <= video.keys()
    assert video["poster"] == "/videos/1/poster.jpg"
    assert tags["select"]["id"] == "subs"
    assert any(t == "div" and a.get("id") == "cue" and a.get("aria-live") == "polite" for t, a in parsed.tags)
    assert 'data-state="loading"' in page
    assert _config(page) == {
        "hlsUrl": "/videos/1/master.m3u8", "subLang": "en", "autoplay": True, "muted": True,
        "subtitles": [
            {"label": "English", "language": "en", "default": True},
            {"label": "Deutsch", "language": "de", "default": False},
        ],
    }  # fmt: skip
    plain = _render()
    assert "autoplay" not in dict(_parse(plain).tags)["video"]
    assert _config(plain)["subLang"] is None


def test_title_cannot_break_out() -> None:
    evil = '</script><script>alert(1)</script><img src=x onerror="alert(2)">'
    page = _render(title=evil)
    parsed = _parse(page)
    # Exactly our three scripts: the JSON config, hls.js, player.js; the title stays text.
    assert len(parsed.scripts) == 3
    assert "alert(1)" not in "".join(text for _, text in parsed.scripts)
    assert not any(t == "img" for t, _ in parsed.tags)
    assert "<title>&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x" in page
    assert not any(k.startswith("on") for _, attrs in parsed.tags for k in attrs)


def test_json_data_is_escaped() -> None:
    hls_url = "/v/master.m3u8?x=</script><script>alert(1)//&y=<!--"
    subs = [EmbedSubtitle('</script><b>"x"</b>\u2028', "en", default=True)]
    page = _render(hls_url=hls_url, subtitles=subs, sub_lang="de")
    [(_, raw)] = [(a, t) for a, t in _parse(page).scripts if a.get("id") == "embed-config"]
    assert "<" not in raw and ">" not in raw and "&" not in raw and "\u2028" not in raw
    config = json.loads(raw)
    assert config["hlsUrl"] == hls_url
    assert config["subtitles"][0]["label"] == subs[0].label
    assert len(_parse(page).scripts) == 3


@pytest.mark.parametrize("value", ["en'; alert(1)//", "english!", "</script>", "", "  "])
def test_bad_sub_lang_is_ignored(value: str) -> None:
    assert _config(_render(sub_lang=value))["subLang"] is None


@pytest.mark.parametrize(
    ("value", "expected"), [("EN", "en"), (" de ", "de"), ("pt-BR", "pt-br"), ("yue", "yue")]
)
def test_sub_lang_is_normalised(value: str, expected: str) -> None:
    assert _config(_render(sub_lang=value))["subLang"] == expected


def test_page_references_only_static_and_hls_url() -> None:
    hls_url = "https://cdn.example.com/videos/7/master.m3u8"
    page = _render(hls_url=hls_url, static_prefix="/assets/")
    urls = [v for _, attrs in _parse(page).tags for k, v in attrs.items() if k in ("src", "href", "poster")]
    # the icon (no favicon.ico request), the stylesheet, hls.js and the player script
    assert urls == ["data:,", "/assets/embed/player.css", "/assets/hls/hls.min.js", "/assets/embed/player.js"]
    assert re.findall(r"(?:https?:)?//[^\s\"'<>]+", page) == [hls_url]  # only inside the JSON config
    assert _config(page)["hlsUrl"] == hls_url
    assert "/static" not in page
    default = _render(hls_url=hls_url)
    for path in ("/static/hls/hls.min.js", "/static/embed/player.js", "/static/embed/player.css"):
        assert path in default


def _served_scripts(page: str) -> list[str]:
    """The ``src`` of every script the page executes; fails on an inline executable script."""
    srcs = []
    for attrs, text in _parse(page).scripts:
        if attrs.get("type") == "application/json":  # data, never executed
            assert "src" not in attrs
            continue
        assert set(attrs) == {"src"} and attrs["src"] and text == ""
        srcs.append(str(attrs["src"]))
    return srcs


def test_csp_allows_only_the_served_scripts() -> None:
    page = _render(title="x", sub_lang="en")
    parsed = _parse(page)
    # No inline executable script: exactly the JSON block plus hls.js and player.js, both same-origin.
    assert _served_scripts(page) == ["/static/hls/hls.min.js", "/static/embed/player.js"]
    assert [a.get("type") for a, _ in parsed.scripts].count("application/json") == 1
    # No inline style either: the stylesheet is a same-origin file.
    assert not any(t == "style" for t, _ in parsed.tags)
    assert not any("style" in attrs for _, attrs in parsed.tags)
    sheets = [a["href"] for t, a in parsed.tags if t == "link" and a.get("rel") == "stylesheet"]
    assert sheets == ["/static/embed/player.css"]
    directives = dict(d.split(" ", 1) for d in EMBED_CSP.split("; "))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["media-src"] == "'self' blob:"
    assert directives["connect-src"] == "'self'"
    assert directives["worker-src"] == "'self' blob:"
    assert directives["style-src"] == "'self'"
    assert "unsafe-eval" not in EMBED_CSP and "frame-ancestors" not in EMBED_CSP
    assert "unsafe-inline" not in EMBED_CSP and "sha256-" not in EMBED_CSP
    # The scripts do not depend on the per-page data (that is in the JSON block only).
    assert _served_scripts(_render(title="other", hls_url="/o.m3u8")) == _served_scripts(page)


def test_player_files_are_packaged_static_files() -> None:
    js = PLAYER_JS.read_text(encoding="utf-8")
    assert 'JSON.parse(document.getElementById("embed-config").textContent)' in js  # its config
    assert "Hls.isSupported()" in js and "</script" not in js
    css = PLAYER_CSS.read_text(encoding="utf-8")
    assert ".vh {" in css and ".menu select" in css


def test_embed_csp_adds_media_origins_only() -> None:
    csp = embed_csp(
        "https://CDN.example.com:8443/v/master.m3u8", "/poster.jpg", None, "http://img.example/p.jpg"
    )
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    origins = "http://img.example https://cdn.example.com:8443"
    assert directives["media-src"] == f"'self' blob: {origins}"
    assert directives["connect-src"] == f"'self' {origins}"
    assert directives["img-src"] == f"'self' data: blob: {origins}"
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert embed_csp() == EMBED_CSP == embed_csp("/relative.m3u8", "javascript:alert(1)", "data:x")
    # Nothing in a URL can inject a directive or a wildcard.
    for evil in ("https://a.example; script-src *", "https://*", "https://a.example'unsafe-inline'/x"):
        assert embed_csp(evil) == EMBED_CSP


def test_vendored_hls_js_matches_version_file() -> None:
    hls = STATIC / "hls"
    meta = dict(
        line.split("=", 1) for line in (hls / "VERSION").read_text().splitlines() if line and line[0] != "#"
    )
    assert re.fullmatch(r"1\.\d+\.\d+", meta["version"])
    assert meta["integrity"].startswith("sha512-") and len(base64.b64decode(meta["integrity"][7:])) == 64
    data = (hls / "hls.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta["file_sha256"]
    assert len(data) < 600 * 1024
    assert b"Hls" in data[-300:]
    assert "Apache License" in (hls / "LICENSE").read_text()


# --- a real HLS rendition with WebVTT subtitles, served over HTTP ----------------------------------


def _first_pts(ts: Path) -> int:
    """The first (smallest) PTS of an MPEG-TS segment, in 90 kHz ticks, read with PyAV."""
    with av.open(str(ts)) as container:
        first: dict[int, int] = {}
        for n, packet in enumerate(container.demux()):
            if packet.pts is not None:
                first[packet.stream.index] = min(packet.pts, first.get(packet.stream.index, packet.pts))
            if n > 200:  # B-frames: the first packet in decode order need not have the smallest PTS
                break
    return min(first.values())


def _media_playlist(uri: str, duration: float) -> str:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        f"#EXT-X-TARGETDURATION:{math.ceil(duration)}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{duration:.3f},\n{uri}\n#EXT-X-ENDLIST\n"
    )


@pytest.fixture(scope="module")
def hls_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("embed-hls")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [ffmpeg, "-nostdin", "-v", "error", "-i", str(DATA / "jfk_librivox.mp4"), "-t", "6", "-c", "copy",
         "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
         "-hls_segment_filename", str(root / "seg%03d.ts"), str(root / "video.m3u8")],
        check=True, timeout=60,
    )  # fmt: skip
    video_playlist = (root / "video.m3u8").read_text()
    duration = sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+)", video_playlist))
    segments = sorted(root.glob("seg*.ts"))
    assert segments and duration > 5
    mpegts = _first_pts(segments[0])
    bandwidth = math.ceil(sum(s.stat().st_size for s in segments) * 8 / duration)

    subs = root / "subs"
    subs.mkdir()
    for lang, end, text in (("en", "00:00:05.000", EN_TEXT), ("de", "00:00:06.000", DE_TEXT)):
        (subs / f"{lang}.vtt").write_text(
            f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n\n00:00:00.500 --> {end}\n{text}\n",
            encoding="utf-8",
        )
        (subs / f"{lang}.m3u8").write_text(_media_playlist(f"{lang}.vtt", duration))
    (root / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,'
        'AUTOSELECT=YES,URI="subs/en.m3u8"\n'
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Deutsch",LANGUAGE="de",DEFAULT=NO,'
        'AUTOSELECT=YES,URI="subs/de.m3u8"\n'
        f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},SUBTITLES="subs"\n'
        "video.m3u8\n"
    )
    return root


class _Handler(SimpleHTTPRequestHandler):
    """``/embed/<name>`` (registered pages, with their CSP), ``/static/``, ``/nohls/`` (the static files
    without hls.js) and ``/media/`` (CORS)."""

    extensions_map = {  # noqa: RUF012 (class-level table, as in the base class)
        **SimpleHTTPRequestHandler.extensions_map,
        ".m3u8": "application/vnd.apple.mpegurl",
        ".ts": "video/mp2t",
        ".vtt": "text/vtt",
        ".js": "text/javascript",
        ".css": "text/css",
    }

    def __init__(self, *args: object, site: _Site, **kw: object) -> None:
        self.site = site
        super().__init__(*args, **kw)  # type: ignore[arg-type]

    def log_message(self, *args: object) -> None:
        pass

    def end_headers(self) -> None:
        if self.path.startswith("/media/"):
            self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def translate_path(self, path: str) -> str:
        for prefix, root in self.site.mounts.items():
            if path.startswith(prefix):
                self.directory = str(root)
                return super().translate_path(path[len(prefix) - 1 :])
        return str(Path(self.site.mounts["/static/"]) / "-missing-")

    def do_GET(self) -> None:
        page = self.site.pages.get(self.path.split("?", 1)[0].removeprefix("/embed/"))
        if page is None:
            super().do_GET()
            return
        body, csp = page[0].encode(), page[1]
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Security-Policy", csp)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class _Site:
    mounts: dict[str, Path]
    pages: dict[str, tuple[str, str]] = field(default_factory=dict)
    origins: list[str] = field(default_factory=list)  # two servers: two origins, same content

    def add_page(self, name: str, page: str, csp: str = EMBED_CSP) -> str:
        self.pages[name] = (page, csp)
        return f"{self.origins[0]}/embed/{name}"


@pytest.fixture(scope="module")
def site(hls_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Site]:
    nohls = tmp_path_factory.mktemp("embed-nohls")  # the player's files, but no hls.js
    shutil.copytree(STATIC / "embed", nohls / "embed")
    site = _Site(mounts={"/static/": STATIC, "/nohls/": nohls, "/media/": hls_root})
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, site=site)) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        site.origins.append(f"http://127.0.0.1:{server.server_address[1]}")
    yield site
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    require_chromium()
    with chromium_page() as p:
        yield p


# --- browser tests -------------------------------------------------------------------------------

STATE = "document.body && document.body.dataset.state"
CUE = "document.getElementById('cue').textContent"
MENU = "Array.from(document.querySelectorAll('#subs option')).map(o => o.textContent)"


def _choose(page: Page, value: str) -> None:
    page.evaluate(
        f"(() => {{ const m = document.getElementById('subs'); m.value = {json.dumps(value)};"
        " m.dispatchEvent(new Event('change')); })()"
    )


def _open(page: Page, url: str) -> None:
    page.console.clear()
    page.navigate(url)


def _csp_violations(page: Page) -> list[str]:
    return [m for m in page.console if "Content Security Policy" in m]


SCRIPTS = "Array.from(document.scripts).filter(s => s.src).map(s => new URL(s.src).pathname)"


def test_chromium_decodes_h264_aac(page: Page) -> None:
    _open(page, "about:blank")
    assert page.evaluate(
        "[MediaSource.isTypeSupported('video/mp4; codecs=\"avc1.64001f\"'),"
        " MediaSource.isTypeSupported('audio/mp4; codecs=\"mp4a.40.2\"')]"
    ) == [True, True]  # fmt: skip


def test_player_plays_hls_with_subtitles(page: Page, site: _Site) -> None:
    html = render_embed_page(
        title="JFK", hls_url="/media/master.m3u8", subtitles=SUBTITLES, poster_url=None,
        sub_lang="en", autoplay=True, muted=True,
    )  # fmt: skip
    _open(page, site.add_page("en", html))
    assert page.wait_for(f"{STATE} === 'playing' || {STATE}.startsWith('error:') && {STATE}") is True
    assert "fellow Americans" in page.wait_for(CUE)
    assert page.evaluate(MENU) == ["Off", "English", "Deutsch"]
    assert page.evaluate("document.getElementById('subs').value") == "0"
    assert page.evaluate(
        "typeof Hls === 'function' && document.getElementById('video').src.startsWith('blob:')"
    )  # hls.js, through MSE
    # What runs the page is the served player.js (no inline script), with the served stylesheet.
    assert page.evaluate(SCRIPTS) == ["/static/hls/hls.min.js", "/static/embed/player.js"]
    with urllib.request.urlopen(f"{site.origins[0]}/static/embed/player.js", timeout=10) as served:
        assert served.read() == PLAYER_JS.read_bytes()
    assert page.evaluate("getComputedStyle(document.getElementById('cue')).position") == "absolute"
    assert page.evaluate("getComputedStyle(document.querySelector('.menu')).position") == "absolute"

    _choose(page, "1")  # Deutsch, from the menu
    assert "Mitbürger" in page.wait_for(f"{CUE}.includes('Mitbürger') && {CUE}")
    _choose(page, "-1")  # Off
    page.wait_for(f"{CUE} === ''")
    tracks = "Array.from(document.getElementById('video').textTracks)"
    showing = f"{tracks}.filter(t => t.mode === 'showing').length"
    assert page.evaluate(showing) == 0
    assert page.evaluate(STATE) == "playing"
    assert _csp_violations(page) == []


def test_sub_lang_picks_the_initial_track(page: Page, site: _Site) -> None:
    html = render_embed_page(
        title="JFK", hls_url="/media/master.m3u8", subtitles=SUBTITLES, poster_url=None,
        sub_lang="de", autoplay=True, muted=True,
    )  # fmt: skip
    _open(page, site.add_page("de", html))
    assert "Mitbürger" in page.wait_for(CUE)
    assert page.evaluate("document.getElementById('subs').value") == "1"
    assert page.evaluate(STATE) == "playing"


def test_cross_origin_hls_needs_its_origin_in_the_csp(page: Page, site: _Site) -> None:
    hls_url = f"{site.origins[1]}/media/master.m3u8"  # another port: another origin (CORS allowed)
    html = render_embed_page(
        title="JFK", hls_url=hls_url, subtitles=SUBTITLES, poster_url=None, sub_lang="en", autoplay=True,
        muted=True,
    )  # fmt: skip
    _open(page, site.add_page("cross", html, embed_csp(hls_url)))
    assert "fellow Americans" in page.wait_for(CUE)
    assert _csp_violations(page) == []

    # The same-origin policy blocks it: the CSP is really enforced (and player.js runs under it).
    _open(page, site.add_page("cross-blocked", html, EMBED_CSP))
    state = page.wait_for(f"{STATE}.startsWith('error:') && {STATE}", timeout=20)
    assert state == "error:manifestLoadError"
    assert _csp_violations(page)


def test_native_hls_fallback_without_hls_js(page: Page, site: _Site) -> None:
    html = render_embed_page(
        title="JFK", hls_url="/media/master.m3u8", subtitles=SUBTITLES, poster_url=None,
        static_prefix="/nohls", sub_lang="en", autoplay=True, muted=True,
    )  # fmt: skip
    _open(page, site.add_page("native", html))
    state = page.wait_for(f"{STATE} !== 'loading' && {STATE} !== 'ready' && {STATE}")
    native = page.evaluate("document.createElement('video').canPlayType('application/vnd.apple.mpegurl')")
    # Recent Chromium plays HLS natively (without exposing its subtitle renditions); older cannot.
    assert state == ("playing" if native else "error:unsupported")
    assert page.evaluate("typeof Hls") == "undefined"
    assert page.evaluate(SCRIPTS) == ["/nohls/hls/hls.min.js", "/nohls/embed/player.js"]


def test_dump_dom_lists_the_subtitle_menu(site: _Site) -> None:
    require_chromium()
    html = render_embed_page(
        title="JFK", hls_url="/media/master.m3u8", subtitles=SUBTITLES, poster_url=None, sub_lang="en",
    )  # fmt: skip
    dom = dump_dom(site.add_page("dump", html), budget_ms=5000)
    # Virtual time gets the manifest and the menu, but does not wait for media to play.
    assert re.search(r'<body data-state="(ready|playing)"', dom)
    assert '<option value="0">English</option>' in dom
    assert '<option value="1">Deutsch</option>' in dom
