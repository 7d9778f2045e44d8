"""The browser console (``/console``) in headless Chromium, end to end on a real ``vodscribe serve``:
sign in, add a video by URL, upload a file (through a network cut), watch it reach ready and get its
AI subtitle, edit a cue and see it in the player, translate, download, the AI tasks page, and the
page's own rules (CSP, escaping, labels, a phone's width). Each page's screenshot is kept under
``$VODSCRIBE_TEST_ARTIFACTS/console`` (default ``test-artifacts/console``).

The browser reaches the server through a proxy on 127.0.0.1 whose network the tests can cut.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import imageio_ffmpeg
import pytest
from webvtt.models import Timestamp

from tests.browser import Page, chromium_page, require_chromium
from tests.conftest import MediaServer, Service, wait_for
from tests.netcut import CuttableProxy
from tests.waiting import eventually
from vodscribe.api.console import console_csp
from vodscribe.speech.cues import READING_RULES
from vodscribe.speech.subtitle_formats import timecode

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("VODSCRIBE_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "console"
STATIC = ROOT / "vodscribe" / "api" / "static"
SLOW = 300  # seconds: a transcode plus Whisper on 2 busy cores, with room to spare


# --- fixtures ---------------------------------------------------------------------------------------
class Console:
    """The console as one user sees it: a tab, a key, and the API behind the same proxy."""

    def __init__(self, page: Page, proxy: CuttableProxy, service: Service, key: str) -> None:
        self.page = page
        self.proxy = proxy
        self.service = service
        self.key = key
        self.api = httpx.Client(
            base_url=proxy.base_url, headers={"Authorization": f"APIKey {key}"}, timeout=30
        )
        self.videos: dict[str, int] = {}  # what the flows made, for the flows after them

    def jfk_video(self) -> int:
        """The video the add-by-URL flow made (the tests after it edit, translate and download it).
        Without it they fail, never skip: a broken flow must not hide behind the tests it feeds."""
        video_id = self.videos.get("jfk")
        if video_id is None:
            flow = "test_add_by_url_reaches_ready_and_gets_its_ai_subtitle"
            pytest.fail(f"needs the video of {flow}, which failed or did not run")
        return video_id

    @property
    def url(self) -> str:
        return f"{self.proxy.base_url}/console"

    def js(self, expression: str, **kw: Any) -> Any:
        return self.page.evaluate(expression, **kw)

    def wait(self, expression: str, timeout: float = 30) -> Any:
        return self.page.wait_for(expression, timeout=timeout, interval=0.1)

    def go(self, hash_: str, view: str) -> None:
        """Open a view afresh (the same address again reloads it) and wait until it has loaded."""
        if not self.js("location.pathname === '/console' && sessionStorage.length > 0"):
            self.sign_in()
        target = json.dumps(hash_)
        self.js(
            "document.body.dataset.state = 'navigating';"
            f" if (location.hash === {target}) window.dispatchEvent(new HashChangeEvent('hashchange'));"
            f" else location.hash = {target}; 1"
        )
        self.wait(
            f"document.body.dataset.view === {json.dumps(view)} && document.body.dataset.state === 'ready'"
        )

    def click(self, selector: str) -> None:
        found = self.js(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"
        )
        assert found, f"nothing to click at {selector}"

    def set_value(self, selector: str, value: str, event: str = "input") -> None:
        """Set a control's value as typing does (the input/change events fire)."""
        ok = self.js(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)}); if (!el) return false;"
            f" el.value = {json.dumps(value)};"
            f" el.dispatchEvent(new Event({json.dumps(event)}, {{bubbles: true}}));"
            " return true; })()"
        )
        assert ok, f"no control at {selector}"

    def submit(self, selector: str) -> None:
        self.js(f"document.querySelector({json.dumps(selector)}).requestSubmit(); 1")

    def confirm(self, ok: bool) -> None:
        self.wait("document.getElementById('confirm').open")
        self.click("#confirm-ok" if ok else "#confirm-cancel")
        self.wait("!document.getElementById('confirm').open")

    def text(self, selector: str) -> str:
        return str(self.js(f"(document.querySelector({json.dumps(selector)}) || {{}}).textContent || ''"))

    def shot(self, name: str) -> Path:
        return self.page.screenshot(ARTIFACTS / f"{name}.png")

    def sign_in(self) -> None:
        self.page.navigate(self.url)
        self.wait("['signin', 'ready'].includes(document.body.dataset.state)")
        if self.js("document.body.dataset.state") == "signin":
            self.set_value("#api-key", self.key)
            self.submit("form")
        self.wait("document.body.dataset.view === 'videos' && document.body.dataset.state === 'ready'")


@pytest.fixture(scope="module")
def console(service: Service) -> Iterator[Console]:
    require_chromium()
    proxy = CuttableProxy(int(service.base_url.rsplit(":", 1)[1]))
    key = service.new_key("console")
    with chromium_page() as page:
        page.viewport(1366, 900)
        c = Console(page, proxy, service, key)
        yield c
        c.api.close()
    proxy.close()


def _row_status(c: Console, name: str) -> str:
    return str(
        c.js(
            "(() => { const row = Array.from(document.querySelectorAll('tbody tr')).find("
            f"r => r.querySelector('td a') && r.querySelector('td a').textContent === {json.dumps(name)});"
            " return row ? row.querySelector('[data-testid=video-status]').textContent : ''; })()"
        )
    )


def _subtitle_rows(c: Console) -> list[dict[str, str]]:
    return list(
        c.js(
            "Array.from(document.querySelectorAll('tr[data-subtitle-id]'))"
            ".map(r => ({id: r.dataset.subtitleId,"
            " name: r.cells[0].textContent, source: r.cells[2].textContent}))"
        )
    )


def _listed(name: str) -> str:
    """JS: the video page lists a subtitle named ``name``."""
    return (
        "Array.from(document.querySelectorAll('tr[data-subtitle-id]'))"
        f".some(r => r.cells[0].textContent === {json.dumps(name)})"
    )


def _speech_video(out: Path) -> Path:
    """The JFK clip with a 1.5 Mbit/s picture (about 4.5 MB): big enough to cut its upload midway."""
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y",
         "-i", str(ROOT / "tests/data/jfk_librivox.mp4"),
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25", "-map", "1:v", "-map", "0:a", "-shortest",
         "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "1500k", "-c:a", "copy", str(out)],
        check=True,
    )  # fmt: skip
    return out


# --- the page itself --------------------------------------------------------------------------------
def test_page_is_served_with_a_strict_csp_and_no_inline_code(console: Console) -> None:
    answer = console.api.get("/console")
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"] == console_csp()
    for name in ("x-frame-options", "x-content-type-options", "referrer-policy", "cache-control"):
        assert name in answer.headers
    page = answer.text
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", page, re.S)
    for attrs, body in scripts:
        assert "src=" in attrs or 'type="application/json"' in attrs, attrs
        assert "src=" not in attrs or not body.strip()
    assert not re.search(r"\son[a-z]+=", page) and "style=" not in page
    for src in re.findall(r'src="([^"]+)"', page) + re.findall(r'href="(/static/[^"]+)"', page):
        assert console.api.get(src).status_code == 200, src
    assert console.api.get("/", follow_redirects=False).headers["location"] == "/console"


def test_console_csp_names_an_outside_media_store_and_forbids_framing() -> None:
    csp = console_csp("https://cdn.example.com/videos/1_x/master.m3u8", "/videos/k/f")
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    for name in ("media-src", "connect-src", "img-src"):
        assert directives[name].endswith(" https://cdn.example.com"), name
    assert "cdn" not in console_csp("/videos/k/f")


def test_vendored_tus_js_client_matches_its_version_file() -> None:
    meta = dict(
        line.split("=", 1)
        for line in (STATIC / "tus" / "VERSION").read_text().splitlines()
        if line and line[0] != "#"
    )
    assert meta["package"] == "tus-js-client" and meta["license"] == "MIT"
    assert meta["integrity"].startswith("sha512-")
    data = (STATIC / "tus" / "tus.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta["file_sha256"]
    assert (STATIC / "tus" / "LICENSE").read_text().startswith("The MIT License")


def test_cue_rules_split_merge_and_formats(console: Console) -> None:
    """The editor's own functions (static/console/cues.js), run in the browser."""
    console.page.navigate(console.url)
    result = console.js(
        """import('/static/console/cues.js').then(m => {
          const vtt = 'WEBVTT\\n\\nNOTE kept\\n\\n1\\n'
            + '00:00:01.000 --> 00:00:03.500 line:90%\\nHello <b>there</b>\\n\\n'
            + '00:00:03.000 --> 00:00:20.000\\n' + 'x'.repeat(50) + '\\nb\\nc\\n';
          const doc = m.parseSubtitles(vtt);
          const srt = m.parseSubtitles('1\\r\\n00:00:01,000 --> 00:00:02,000\\r\\nOne\\r\\n\\r\\n'
            + '2\\r\\n00:00:02,500 --> 00:00:04,000\\r\\nTwo\\r\\n');
          const [a, b] = m.splitCue({id: '', start: 0, end: 4, settings: '', text: 'one two three four'});
          return {
            cues: doc.cues, blocks: doc.blocks, vtt: m.toVtt(doc), srt: m.toSrt(doc.cues), fromSrt: srt.cues,
            rules0: m.problems(doc.cues, 0).map(p => p.rule),
            rules1: m.problems(doc.cues, 1).map(p => p.rule),
            short: m.problems([{start: 0, end: 0.5, text: 'Hi'}], 0).map(p => p.rule),
            errors: m.problems([{start: 2, end: 1, text: ' '}], 0).map(p => p.level + ':' + p.rule),
            fast: m.problems([{start: 0, end: 1, text: 'eighteen characters'}], 0).map(p => p.rule),
            split: [a, b], merged: m.mergeCues(a, b),
            wrapped: [m.wrap('a\\nb'), m.wrap('The first half of a long line and the second\\nhalf of it')],
            time: [m.parseTime('01:02.5'), m.parseTime('1:00:00,250'), m.parseTime('x')],
            rules: m.RULES,
          };
        })""",
    )
    assert result["cues"][0] == {
        "id": "1",
        "start": 1,
        "end": 3.5,
        "settings": "line:90%",
        "text": "Hello <b>there</b>",
    }
    assert result["blocks"] == ["NOTE kept"]
    assert result["vtt"].startswith(
        "WEBVTT\n\nNOTE kept\n\n1\n00:00:01.000 --> 00:00:03.500 line:90%\nHello <b>there</b>"
    )
    assert result["srt"].startswith(
        "1\n00:00:01,000 --> 00:00:03,500\nHello <b>there</b>\n\n2\n00:00:03,000 --> 00:00:20,000\n"
    )
    assert [(c["start"], c["end"], c["text"]) for c in result["fromSrt"]] == [(1, 2, "One"), (2.5, 4, "Two")]
    assert result["rules0"] == ["overlap"]
    assert set(result["rules1"]) == {"line", "lines", "long", "overlap"}
    assert result["short"] == ["short"]
    assert set(result["errors"]) == {"error:order", "error:empty"}
    assert result["fast"] == ["cps"]
    first, second = result["split"]
    assert (first["text"], second["text"]) == ("one two", "three four")
    assert first["end"] == second["start"] and 0 < first["end"] < 4
    assert result["merged"]["text"] == "one two three four" and result["merged"]["end"] == 4
    assert result["wrapped"] == ["a b", "The first half of a long line\nand the second half of it"]
    assert result["time"][:2] == [62.5, 3600.25] and result["time"][2] is None  # NaN comes back as null
    # The editor warns against the rules the server builds cues to: one set, in the page's config.
    assert result["rules"] == {
        "maxLineChars": READING_RULES.max_line_chars,
        "maxLines": READING_RULES.max_lines,
        "maxCharsPerSecond": READING_RULES.max_cps,
        "minSeconds": READING_RULES.min_duration,
        "maxSeconds": READING_RULES.max_duration,
    }


# --- sign in ----------------------------------------------------------------------------------------
def test_sign_in_keeps_the_key_in_this_tab_only(console: Console) -> None:
    c = console
    c.page.navigate(c.url)
    c.js("sessionStorage.clear(); 1")
    c.page.navigate(c.url)
    c.wait("document.body.dataset.state === 'signin'")
    assert c.js("document.activeElement.id") == "api-key"
    c.shot("01-sign-in")
    # By keyboard: type a wrong key, Enter; then the right one.
    c.page.type_text("not-a-key")
    c.page.press("Enter", "Enter", 13)
    c.wait("document.querySelector('[data-testid=signin-error]').textContent !== ''")
    assert "not valid" in c.text("[data-testid=signin-error]")
    c.set_value("#api-key", "")
    c.js("document.getElementById('api-key').focus(); 1")
    c.page.type_text(c.key)
    c.page.press("Enter", "Enter", 13)
    c.wait("document.body.dataset.view === 'videos' && document.body.dataset.state === 'ready'")
    assert c.key not in c.js("location.href")
    assert c.js("JSON.stringify(Object.assign({}, localStorage))") == "{}"
    assert c.js("sessionStorage.getItem('vodscribe.apiKey')") == c.key
    assert c.key not in c.js("document.documentElement.outerHTML")
    # Sign out: the key is gone from the tab, and the console asks for one again.
    c.click("#signout")
    c.wait("document.body.dataset.state === 'signin'")
    assert c.js("sessionStorage.length") == 0
    assert c.js("document.getElementById('nav').hidden") is True
    # A key the server no longer takes (revoked, another server's): back to signing in.
    c.js(
        "sessionStorage.setItem('vodscribe.apiKey', 'stale-key'); document.body.dataset.state = 'navigating';"
        " location.hash = '#/tasks'; 1"
    )
    c.wait("document.body.dataset.state === 'signin'")
    assert "sign in again" in c.text("#toast") and c.js("sessionStorage.length") == 0
    c.sign_in()
    served_log = (c.service.data_dir / "serve.log").read_text(errors="replace")
    assert c.key not in served_log and c.key.split("_", 1)[-1] not in served_log


# --- add by URL, ready, AI subtitle, player, downloads --------------------------------------------
def test_add_by_url_reaches_ready_and_gets_its_ai_subtitle(
    console: Console, media_server: MediaServer
) -> None:
    c = console
    c.sign_in()
    name = "JFK <img src=x onerror=alert(1)> speech"  # what users write is shown, never run
    c.set_value("#add-url", media_server.url("jfk_librivox.mp4"))
    c.set_value("#add-name", name)
    c.set_value("#add-ai", "auto", event="change")
    c.submit("form[aria-labelledby=add-url-title]")
    c.wait(
        f"Array.from(document.querySelectorAll('tbody td a')).some(a => a.textContent === {json.dumps(name)})"
    )
    assert c.js("document.querySelectorAll('tbody img').length") == 0
    # The list refreshes by itself until the video is ready.
    seen = {eventually(lambda: _row_status(c, name), timeout=30, what="the row")}
    eventually(
        lambda: seen.add(_row_status(c, name)) or "Ready" in seen, timeout=SLOW, interval=0.3, what="ready"
    )
    c.shot("02-videos")
    video_id = int(
        c.js(
            "Array.from(document.querySelectorAll('tbody tr'))"
            f".find(r => r.cells[0].textContent === {json.dumps(name)}).dataset.videoId"
        )
    )
    c.videos["jfk"] = video_id
    c.go(f"#/videos/{video_id}", "video")
    assert c.text("h1") == name
    c.wait("document.querySelectorAll('tr[data-subtitle-id]').length > 0", timeout=SLOW)
    rows = _subtitle_rows(c)
    assert rows[0]["name"] == "English (AI-generated)" and rows[0]["source"] == "AI-generated"
    # The player plays the HLS and has the subtitle in its menu.
    c.wait("document.querySelector('.player video').readyState >= 1")
    options = c.js("Array.from(document.querySelectorAll('.player select option')).map(o => o.textContent)")
    assert options == ["Subtitles off", "English (AI-generated)"]
    c.set_value(".player select", f"sub-{rows[0]['id']}", event="change")
    c.js("document.querySelector('.player video').currentTime = 3; 1")
    c.wait("document.querySelector('[data-testid=active-cue]').textContent.length > 0")
    c.shot("03-video")
    assert not [line for line in c.page.console if "Content Security Policy" in line or "exception" in line]


def test_subtitles_download_as_vtt_and_srt(console: Console, tmp_path: Path) -> None:
    c = console
    video_id = c.jfk_video()
    c.go(f"#/videos/{video_id}", "video")
    c.wait("document.querySelectorAll('tr[data-subtitle-id]').length > 0")
    sub_id = _subtitle_rows(c)[0]["id"]
    stored = c.api.get(f"/streaming/videos/{video_id}/subtitles/{sub_id}").json()["vtt"]
    c.page.allow_downloads(tmp_path)
    c.click(f"tr[data-subtitle-id='{sub_id}'] button[aria-label$='as WebVTT']")
    c.click(f"tr[data-subtitle-id='{sub_id}'] button[aria-label$='as SRT']")
    vtt = eventually(lambda: [p for p in tmp_path.glob("*.vtt")], what="the .vtt download")[0]
    srt = eventually(lambda: [p for p in tmp_path.glob("*.srt")], what="the .srt download")[0]
    assert vtt.read_text() == stored
    assert vtt.name.endswith(f".eng.{sub_id}.vtt") and "<" not in vtt.name
    cues = re.findall(r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})", stored)
    text = srt.read_text()
    assert re.findall(r"(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})", text) == [
        (a.replace(".", ","), b.replace(".", ",")) for a, b in cues
    ]
    assert text.startswith("1\n") and "WEBVTT" not in text


# --- the editor -------------------------------------------------------------------------------------
def _cue_texts(c: Console) -> list[str]:
    return list(c.js("Array.from(document.querySelectorAll('.cue textarea')).map(t => t.value)"))


def test_edit_a_cue_undo_split_merge_save_and_see_it_in_the_player(console: Console) -> None:
    c = console
    video_id = c.jfk_video()
    sub_id = c.api.get(f"/streaming/videos/{video_id}/subtitles").json()[0]["id"]
    c.go(f"#/videos/{video_id}/subtitles/{sub_id}", "editor")
    c.wait("document.querySelectorAll('.cue').length > 1")
    original = _cue_texts(c)
    assert "saved" in c.text("[data-testid=editor-summary]")

    # Edit, then undo before saving.
    c.set_value(".cue:nth-child(1) textarea", "Words nobody said")
    assert "unsaved changes" in c.text("[data-testid=editor-summary]")
    c.click(".toolbar button:nth-of-type(1)")  # Undo
    assert _cue_texts(c) == original
    assert "· saved" in c.text("[data-testid=editor-summary]")

    # A line over 42 characters is flagged while it is there.
    c.set_value(".cue:nth-child(1) textarea", "This line is much longer than forty-two characters, surely")
    rules = c.js(
        "Array.from(document.querySelectorAll('.cue:nth-child(1) .problems li')).map(li => li.dataset.rule)"
    )
    assert "line" in rules
    edited = "Edited in the console"
    c.set_value(".cue:nth-child(1) textarea", edited)

    # Split the second cue, then merge it back.
    count = len(_cue_texts(c))
    c.click(".cue:nth-child(2) button[aria-label^='Split']")
    assert len(_cue_texts(c)) == count + 1
    c.click(".cue:nth-child(2) button[aria-label^='Merge']")
    assert len(_cue_texts(c)) == count
    c.shot("04-editor")

    # A time that is not a time blocks the save.
    start3 = c.js("document.querySelector('.cue:nth-child(3) input.time').value")
    c.set_value(".cue:nth-child(3) input.time", "soon", event="change")
    assert (
        c.js("document.querySelector('.cue:nth-child(3) input.time').getAttribute('aria-invalid')") == "true"
    )
    c.js("document.getElementById('toast').dataset.kind = ''; 1")
    c.click(".toolbar button.primary")
    c.wait("document.getElementById('toast').dataset.kind === 'error'")
    c.set_value(".cue:nth-child(3) input.time", start3, event="change")
    assert (
        c.js("document.querySelector('.cue:nth-child(3) input.time').hasAttribute('aria-invalid')") is False
    )
    # A time typed in a shorter form is read and written back in full.
    shown = c.js("document.querySelectorAll('.cue:nth-child(1) input.time')[1].value")
    end1 = Timestamp.from_string(shown).in_milliseconds() / 1000 + 0.05
    typed = f"{int(end1 // 60)}:{end1 % 60:06.3f}"  # "0:04.880"
    c.set_value(".cue:nth-child(1) input.time:nth-of-type(2)", typed, event="change")
    new_end = timecode(end1)
    assert c.js("document.querySelectorAll('.cue:nth-child(1) input.time')[1].value") == new_end

    saved = c.js("Number(document.body.dataset.saved || 0)")
    c.js("document.querySelector('.cue:nth-child(1) textarea').focus(); 1")
    c.page.press("s", "KeyS", 83, ctrl=True)  # the keyboard's way to save
    c.wait(f"Number(document.body.dataset.saved || 0) > {saved}")
    stored = c.api.get(f"/streaming/videos/{video_id}/subtitles/{sub_id}").json()["vtt"]
    assert edited in stored and "Words nobody said" not in stored
    assert f" --> {new_end}\n{edited}" in stored

    # The player shows the new text at the cue's time (click the cue: it seeks there).
    c.click(".cue:nth-child(1) .problems")
    c.wait(f"document.querySelector('[data-testid=active-cue]').textContent === {json.dumps(edited)}")
    # ...and the video's HLS, which viewers get, has it too.
    video = c.api.get(f"/streaming/videos/{video_id}").json()
    master = httpx.get(video["hls_url"]).text
    playlist_uri = re.search(r'TYPE=SUBTITLES.*URI="([^"]+)"', master).group(1)  # type: ignore[union-attr]
    base = video["hls_url"].rsplit("/", 1)[0]
    playlist = httpx.get(f"{base}/{playlist_uri}").text
    vtt_name = next(line for line in playlist.splitlines() if line.endswith(".vtt"))
    assert edited in httpx.get(f"{base}/{playlist_uri.rsplit('/', 1)[0]}/{vtt_name}").text


def test_leaving_the_editor_with_unsaved_changes_asks_first(console: Console) -> None:
    c = console
    video_id = c.jfk_video()
    sub_id = c.api.get(f"/streaming/videos/{video_id}/subtitles").json()[0]["id"]
    editor = f"#/videos/{video_id}/subtitles/{sub_id}"
    c.go(editor, "editor")
    c.set_value(".cue:nth-child(1) textarea", "Words not saved")
    c.js("location.hash = '#/videos'; 1")
    c.confirm(ok=False)  # stay
    assert c.js("location.hash") == editor and c.js("document.body.dataset.view") == "editor"
    assert _cue_texts(c)[0] == "Words not saved"
    c.js("location.hash = '#/tasks'; 1")
    c.confirm(ok=True)  # leave, losing the change
    c.wait("document.body.dataset.view === 'tasks'")
    assert (
        "Words not saved" not in c.api.get(f"/streaming/videos/{video_id}/subtitles/{sub_id}").json()["vtt"]
    )


# --- translate --------------------------------------------------------------------------------------
def test_translate_offers_the_servers_languages_and_adds_the_translation(console: Console) -> None:
    c = console
    video_id = c.jfk_video()
    c.go(f"#/videos/{video_id}", "video")
    c.wait("!document.getElementById('translate-language').disabled")
    info = c.api.get("/streaming/ai/info", params={"type": "translation_languages"}).json()
    offered = set(
        c.js("Array.from(document.querySelectorAll('#translate-language option')).map(o => o.value)")
    )
    assert offered == {code for backend in info["backends"] for code in backend["targets"]}
    before = len(_subtitle_rows(c))
    c.set_value("#translate-language", "ger", event="change")
    c.submit("form[aria-labelledby=translate-title]")
    c.wait(f"document.querySelectorAll('.tasks li').length > 0 || {_listed('German (AI-translated)')}")
    c.wait(
        _listed("German (AI-translated)"),
        timeout=SLOW,
    )
    rows = _subtitle_rows(c)
    assert len(rows) == before + 1  # the transcription it reused is not attached a second time
    german = next(r for r in rows if r["name"] == "German (AI-translated)")
    assert german["source"] == "AI-translated"
    assert c.api.get(f"/streaming/videos/{video_id}/subtitles/{german['id']}").json()["language"] == "ger"
    c.shot("05-video-translated")


def test_the_editor_translates_the_subtitle_as_corrected(console: Console) -> None:
    c = console
    video_id = c.jfk_video()
    english = next(
        s for s in c.api.get(f"/streaming/videos/{video_id}/subtitles").json() if s["language"] == "eng"
    )
    c.go(f"#/videos/{video_id}/subtitles/{english['id']}", "editor")
    c.wait("!document.getElementById('ed-translate-language').disabled")
    offered = set(
        c.js("Array.from(document.querySelectorAll('#ed-translate-language option')).map(o => o.value)")
    )
    assert "fre" in offered and "eng" not in offered  # not into its own language
    corrected = "Ask not what Quetzalia can do for you."
    c.set_value(".cue:nth-child(1) textarea", corrected)
    c.set_value("#ed-translate-language", "fre", event="change")
    c.js("document.getElementById('toast').dataset.kind = ''; 1")
    c.submit("form[aria-labelledby=ed-translate-title]")  # unsaved: the saved text is what is translated
    c.wait("document.getElementById('toast').dataset.kind === 'error'")
    saved = c.js("Number(document.body.dataset.saved || 0)")
    c.click(".toolbar button.primary")
    c.wait(f"Number(document.body.dataset.saved || 0) > {saved}")
    c.submit("form[aria-labelledby=ed-translate-title]")
    c.wait("Boolean(document.body.dataset.translating)")

    def french() -> str:
        subs = c.api.get(f"/streaming/videos/{video_id}/subtitles").json()
        found = [s["vtt"] for s in subs if s["name"] == "French (AI-translated)"]
        assert found, [s["name"] for s in subs]
        return found[0]

    assert "Quetzalia" in eventually(french, timeout=SLOW, what="the French translation attached")


# --- subtitle files, delete with confirmation, search ---------------------------------------------
def test_add_a_subtitle_file_and_delete_with_confirmation(console: Console, tmp_path: Path) -> None:
    c = console
    video_id = c.jfk_video()
    srt = tmp_path / "notes.fr.srt"
    srt.write_text(
        "1\n00:00:01,000 --> 00:00:03,000\n<script>alert(1)</script> Bonjour\n\n"
        "2\n00:00:04,000 --> 00:00:06,000\nAu revoir\n"
    )
    c.go(f"#/videos/{video_id}", "video")
    c.page.set_files("#sub-file", [srt])
    c.set_value("#sub-language", "fre", event="change")
    c.submit("form[aria-labelledby=subfile-title]")
    c.wait(_listed("notes.fr"))
    row = next(r for r in _subtitle_rows(c) if r["name"] == "notes.fr")
    assert row["source"] == "Uploaded"
    # Its text is shown as text in the editor: nothing runs.
    c.go(f"#/videos/{video_id}/subtitles/{row['id']}", "editor")
    assert _cue_texts(c)[0] == "<script>alert(1)</script> Bonjour"
    assert c.js("document.querySelectorAll('main script').length") == 0
    c.go(f"#/videos/{video_id}", "video")
    # Delete: Cancel keeps it, Delete removes it.
    c.click(f"tr[data-subtitle-id='{row['id']}'] button.danger")
    c.confirm(ok=False)
    assert any(r["id"] == row["id"] for r in _subtitle_rows(c))
    c.click(f"tr[data-subtitle-id='{row['id']}'] button.danger")
    c.confirm(ok=True)
    c.wait(f"!document.querySelector(\"tr[data-subtitle-id='{row['id']}']\")")
    assert c.api.get(f"/streaming/videos/{video_id}/subtitles/{row['id']}").status_code == 404


# --- upload from the computer, through a network cut ----------------------------------------------
def test_upload_a_file_resumes_after_a_network_cut(console: Console, tmp_path: Path) -> None:
    c = console
    source = _speech_video(tmp_path / "lecture.mp4")
    c.sign_in()
    c.page.record_requests()
    c.set_value("#upload-ai", "auto", event="change")
    c.proxy.throttle(400_000)  # bytes/s: the upload takes ~10 s, time to cut it
    try:
        c.page.drop_files("[data-testid=dropzone]", [source])
        c.wait("document.querySelector('.upload') !== null")
        progress = (
            "Number(document.querySelector('.upload [role=progressbar]').getAttribute('aria-valuenow'))"
        )
        c.wait(f"{progress} >= 10", timeout=60)
        assert c.text(".upload button") == "Pause"
        c.click(".upload button")
        c.wait("document.querySelector('.upload').dataset.state === 'paused'")
        assert c.text(".upload button") == "Resume"
        c.click(".upload button")
        c.wait("document.querySelector('.upload').dataset.state === 'uploading'")
        c.wait(f"{progress} >= 30", timeout=60)
        c.proxy.cut()
        c.wait("document.querySelector('.upload').dataset.state === 'retrying'", timeout=30)
        c.shot("06-upload-resuming")
        threading.Timer(1.5, c.proxy.restore).start()
        c.proxy.throttle(None)
        c.wait("document.querySelector('.upload').dataset.state === 'done'", timeout=120)
    finally:
        c.proxy.restore()
        c.proxy.throttle(None)
    patches = [r for r in c.page.requests if r.get("method") == "PATCH" and "/upload/" in r.get("url", "")]
    offsets = [int(r["headers"].get("Upload-Offset", -1)) for r in patches]
    # Resumed where the server had got to (after the pause, after the cut), never from the start again.
    assert len(patches) >= 2 and offsets[0] == 0 and offsets == sorted(offsets) and offsets[-1] > 0, offsets
    video_id = int(c.js("document.querySelector('.upload a').getAttribute('href').split('/').pop()"))
    assert c.text(".upload button") == "Clear"  # a finished upload is only taken off the list
    c.click(".upload button")
    c.wait("document.querySelector('.upload') === null")
    # The list shows it reaching ready by itself; then it gets its AI subtitle.
    c.wait(
        f"document.querySelector(\"tr[data-video-id='{video_id}'] [data-testid=video-status]\")"
        "?.textContent === 'Ready'",
        timeout=SLOW,
    )
    assert c.api.get(f"/streaming/videos/{video_id}").json()["origin_size"] == source.stat().st_size
    c.go(f"#/videos/{video_id}", "video")
    c.wait(
        _listed("English (AI-generated)"),
        timeout=SLOW,
    )
    c.videos["upload"] = video_id


def test_cancelling_an_upload_deletes_its_video(console: Console, tmp_path: Path) -> None:
    c = console
    source = _speech_video(tmp_path / "draft.mp4")
    c.go("#/videos", "videos")
    c.proxy.throttle(50_000)
    try:
        c.page.set_files("#upload-files", [source])  # the file dialog's way in (keyboard users)
        c.wait("document.querySelector('.upload')?.dataset.state === 'uploading'")
        c.wait("!!document.querySelector('.upload a')")
        video_id = int(c.js("document.querySelector('.upload a').getAttribute('href').split('/').pop()"))
        c.click(".upload button.danger")
        c.confirm(ok=True)
        c.wait("document.querySelector('.upload') === null")
    finally:
        c.proxy.throttle(None)
    eventually(
        lambda: c.api.get(f"/streaming/videos/{video_id}").status_code == 404, what="the video deleted"
    )


def test_search_and_delete_a_video_with_confirmation(console: Console) -> None:
    c = console
    video = c.api.post("/streaming/videos", json={"name": "Unwanted draft"}).json()
    c.go("#/videos", "videos")
    # The list refreshes by itself without taking the keyboard focus away.
    delete_button = f"tr[data-video-id='{video['id']}'] button.danger"
    c.wait(f'!!document.querySelector("{delete_button}")')
    c.js(f'document.querySelector("{delete_button}").focus(); 1')
    other = c.api.post("/streaming/videos", json={"name": "Another draft"}).json()
    c.wait(f"!!document.querySelector(\"tr[data-video-id='{other['id']}']\")")
    assert c.js("document.activeElement.getAttribute('aria-label')") == "Delete Unwanted draft"
    assert c.api.delete(f"/streaming/videos/{other['id']}").status_code == 204
    c.set_value("#video-search", "unwanted")
    c.wait(
        "document.querySelectorAll('tbody tr[data-video-id]').length === 1"
        f" && !!document.querySelector(\"tr[data-video-id='{video['id']}']\")"
    )
    c.click(f"tr[data-video-id='{video['id']}'] button.danger")
    c.confirm(ok=True)
    c.wait(f"!document.querySelector(\"tr[data-video-id='{video['id']}']\")")
    assert c.api.get(f"/streaming/videos/{video['id']}").status_code == 404
    c.set_value("#video-search", "")


# --- AI tasks ---------------------------------------------------------------------------------------
def test_tasks_page_cancels_and_explains_a_failure(console: Console, media_server: MediaServer) -> None:
    c = console
    failing = c.api.post(
        "/streaming/ai/tasks", json={"task_name": "transcription", "url": media_server.url("README.md")}
    ).json()["task_id"]
    wait_for(c.api, failing, timeout=SLOW)
    endless = c.api.post(
        "/streaming/ai/tasks",
        json={"task_name": "transcription", "url": media_server.url("endless/ldc93s1.wav")},
    ).json()["task_id"]
    c.go("#/tasks", "tasks")
    c.wait(f"!!document.querySelector(\"tr[data-task-id='{failing}'] [data-testid=task-error]\")")
    error = c.text(f"tr[data-task-id='{failing}'] [data-testid=task-error]")
    assert error == c.api.get(f"/streaming/ai/tasks/{failing}").json()["result"]["error"] and len(error) > 10
    c.wait(f"!!document.querySelector(\"tr[data-task-id='{endless}'] button.danger\")")
    c.shot("07-tasks")
    c.click(f"tr[data-task-id='{endless}'] button.danger")
    c.confirm(ok=True)
    c.wait(
        f"document.querySelector(\"tr[data-task-id='{endless}']\").dataset.status === 'REVOKED'", timeout=60
    )
    assert c.api.get(f"/streaming/ai/tasks/{endless}").json()["status"] == "REVOKED"


# --- every control labelled, a phone's width ------------------------------------------------------
UNLABELLED = """Array.from(document.querySelectorAll('input, select, textarea, button, a[href]'))
  .filter(el => el.offsetParent !== null || el.type === 'file')
  .filter(el => !((el.labels && el.labels.length) || el.getAttribute('aria-label')
                  || el.getAttribute('aria-labelledby')
                  || (['BUTTON', 'A'].includes(el.tagName) && el.textContent.trim())))
  .map(el => el.outerHTML.slice(0, 120))"""


@pytest.mark.parametrize("width", [1366, 390])
def test_every_view_is_labelled_and_fits_the_screen(console: Console, width: int) -> None:
    c = console
    video_id = c.jfk_video()
    sub_id = c.api.get(f"/streaming/videos/{video_id}/subtitles").json()[0]["id"]
    c.page.viewport(width, 844 if width < 600 else 900, mobile=width < 600)
    try:
        views = [("#/videos", "videos"), (f"#/videos/{video_id}", "video"), ("#/tasks", "tasks")]
        views.insert(2, (f"#/videos/{video_id}/subtitles/{sub_id}", "editor"))
        for hash_, view in views:
            c.go(hash_, view)
            assert c.js(UNLABELLED) == [], view
            overflow = c.js("document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"{view} is {overflow}px wider than a {width}px screen"
            if width < 600:
                c.shot(f"08-phone-{view}")
    finally:
        c.page.viewport(1366, 900)
    assert not [line for line in c.page.console if "Content Security Policy" in line]
