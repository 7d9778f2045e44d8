"""The embed player page behind a video's ``iframe_url`` (Gcore-compatible).

A small self-contained HTML5 page: a ``<video>`` filling the iframe, playing the video's HLS with
hls.js (vendored under ``vodscribe/api/static/hls/``, served at ``{static_prefix}/hls/hls.min.js``;
no CDN) or natively where the browser plays HLS itself (Safari), plus a subtitle menu ("Off" and one
entry per subtitle rendition of the master playlist). ``sub_lang`` (Gcore's ``?sub_lang=en`` iframe
parameter) picks the initial subtitle track.

The page loads nothing but ``{static_prefix}/hls/hls.min.js``, the HLS URL (and what its playlists
reference) and the poster. Its one inline script is a constant, so :data:`EMBED_CSP` /
:func:`embed_csp` allow it by hash; the per-page data travels in a JSON block
(``<script type="application/json">``), which is never executed.

For tests and monitoring the page exposes its progress: ``document.body.dataset.state`` is
``loading``, then ``ready`` (manifest parsed / metadata loaded), ``playing``, or ``error:<details>``
(hls.js's fatal error ``details``, ``media-<code>``, ``unsupported``); the visually hidden
``<div id="cue" aria-live="polite">`` mirrors the text of the active cues of the showing text track.

Serve it with the CSP header, e.g. in a route::

    return HTMLResponse(render_embed_page(...), headers={"Content-Security-Policy": embed_csp(hls_url)})
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["EMBED_CSP", "EmbedSubtitle", "embed_csp", "render_embed_page"]


@dataclass(frozen=True, slots=True)
class EmbedSubtitle:
    """A subtitle track the video has (as listed in its master playlist)."""

    label: str  # shown in the menu when the playlist's NAME is missing
    language: str  # ISO 639-1, e.g. "en"
    default: bool = False  # selected initially when no ``sub_lang`` matches


_LANG_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")

# The page's only executable inline script. It is a constant (the per-page data is read from the
# JSON block #embed-config), so the CSP can allow it by its sha256 hash. ES2015, no dependencies
# besides window.Hls (hls.js), which it does without where the browser plays HLS natively.
_SCRIPT = r"""
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("embed-config").textContent);
  var video = document.getElementById("video");
  var menu = document.getElementById("subs");
  var cueBox = document.getElementById("cue");
  var hls = null;
  var picked = false;
  var mediaRecoveries = 0;
  if (cfg.muted) video.muted = true;

  function setState(state) {
    if (document.body.dataset.state.indexOf("error:") !== 0) document.body.dataset.state = state;
  }
  function primary(code) { return String(code || "").toLowerCase().split(/[-_]/)[0]; }

  // Mirror the active cues of the showing text track into #cue (tests, screen readers).
  function cueText(cue) {
    if (typeof cue.getCueAsHTML === "function") return cue.getCueAsHTML().textContent;
    return cue.text || "";
  }
  function mirrorCues() {
    var parts = [];
    for (var i = 0; i < video.textTracks.length; i++) {
      var track = video.textTracks[i];
      if (track.mode !== "showing" || !track.activeCues) continue;
      for (var j = 0; j < track.activeCues.length; j++) parts.push(cueText(track.activeCues[j]));
    }
    var text = parts.join("\n");
    if (cueBox.textContent !== text) cueBox.textContent = text;
  }
  function watchTrack(track) {
    if (track && !track.vodscribeWatched) {
      track.vodscribeWatched = true;
      track.addEventListener("cuechange", mirrorCues);
    }
  }
  for (var t = 0; t < video.textTracks.length; t++) watchTrack(video.textTracks[t]);
  video.textTracks.addEventListener("addtrack", function (e) { watchTrack(e.track); });
  video.textTracks.addEventListener("change", mirrorCues);

  // tracks: [{lang, name}]; the index of the track to start with: sub_lang's, else the one marked
  // default by the server; null leaves it to the playlist (DEFAULT=YES).
  function pickTrack(tracks) {
    var i, s;
    var want = primary(cfg.subLang);
    if (want) for (i = 0; i < tracks.length; i++) if (primary(tracks[i].lang) === want) return i;
    for (s = 0; s < cfg.subtitles.length; s++) {
      if (!cfg.subtitles[s].default) continue;
      for (i = 0; i < tracks.length; i++) {
        if (primary(tracks[i].lang) === primary(cfg.subtitles[s].language)) return i;
      }
    }
    return null;
  }
  function labelFor(track, index) {
    if (track.name) return track.name;
    for (var s = 0; s < cfg.subtitles.length; s++) {
      if (primary(cfg.subtitles[s].language) === primary(track.lang)) return cfg.subtitles[s].label;
    }
    return track.lang || "Subtitles " + (index + 1);
  }
  function fillMenu(tracks, selected) {
    while (menu.options.length > 1) menu.remove(1);
    for (var i = 0; i < tracks.length; i++) {
      var option = document.createElement("option");
      option.value = String(i);
      option.textContent = labelFor(tracks[i], i);
      menu.appendChild(option);
    }
    menu.value = String(selected >= 0 && selected < tracks.length ? selected : -1);
    menu.hidden = tracks.length === 0;
  }

  function autoplay() {
    if (!cfg.autoplay) return;
    var p = video.play();
    if (p && typeof p.catch === "function") p.catch(function () { /* blocked: wait for the user */ });
  }

  video.addEventListener("playing", function () { setState("playing"); });

  function startHlsJs() {
    hls = new Hls({ enableWebVTT: true, renderTextTrackCues: true, subtitleDisplay: true });
    function hlsTracks() {
      return hls.subtitleTracks.map(function (t) { return { lang: t.lang, name: t.name }; });
    }
    hls.on(Hls.Events.MANIFEST_PARSED, function (event, data) {
      // The initial track goes in as hls.js's subtitlePreference, read when the level's subtitle
      // group is set up (after this event): setting hls.subtitleTrack this early does not stick.
      var all = data.subtitleTracks || [];
      var index = pickTrack(all);
      if (index !== null) {
        var option = {};
        if (all[index].lang) option.lang = all[index].lang;
        if (all[index].name) option.name = all[index].name;
        hls.config.subtitlePreference = option;
      }
      setState("ready");
      autoplay();
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, function () { fillMenu(hlsTracks(), hls.subtitleTrack); });
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, function () { menu.value = String(hls.subtitleTrack); });
    hls.on(Hls.Events.ERROR, function (event, data) {
      if (!data.fatal) return;
      if (data.type === Hls.ErrorTypes.MEDIA_ERROR && mediaRecoveries < 1) {
        mediaRecoveries += 1;
        hls.recoverMediaError();
        return;
      }
      setState("error:" + (data.details || data.type || "fatal"));
    });
    menu.addEventListener("change", function () {
      hls.subtitleDisplay = true;
      hls.subtitleTrack = parseInt(menu.value, 10);
    });
    hls.loadSource(cfg.hlsUrl);
    hls.attachMedia(video);
  }

  function startNative() {
    function nativeTracks() {
      var list = [];
      for (var i = 0; i < video.textTracks.length; i++) {
        var track = video.textTracks[i];
        if (track.kind === "subtitles" || track.kind === "captions") list.push(track);
      }
      return list;
    }
    function select(index) {
      var list = nativeTracks();
      for (var i = 0; i < list.length; i++) list[i].mode = i === index ? "showing" : "disabled";
      mirrorCues();
    }
    function refresh() {
      var list = nativeTracks();
      var selected = -1;
      for (var i = 0; i < list.length; i++) if (list[i].mode === "showing") selected = i;
      if (!picked && list.length) {
        picked = true;
        var index = pickTrack(list.map(function (t) { return { lang: t.language, name: t.label }; }));
        if (index !== null) { select(index); selected = index; }
      }
      fillMenu(list.map(function (t) { return { lang: t.language, name: t.label }; }), selected);
    }
    video.textTracks.addEventListener("addtrack", refresh);
    video.addEventListener("loadedmetadata", function () { setState("ready"); refresh(); autoplay(); });
    video.addEventListener("error", function () {
      setState("error:media-" + (video.error ? video.error.code : "unknown"));
    });
    menu.addEventListener("change", function () { select(parseInt(menu.value, 10)); });
    video.src = cfg.hlsUrl;
  }

  try {
    if (window.Hls && Hls.isSupported()) startHlsJs();
    else if (video.canPlayType("application/vnd.apple.mpegurl")) startNative();
    else setState("error:unsupported");
  } catch (err) {
    setState("error:" + (err && err.message ? err.message : "script"));
  }
})();
"""

_SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()

_STYLE = """
html, body { margin: 0; padding: 0; width: 100%; height: 100%; overflow: hidden; background: #000; }
body { position: relative; font: 14px/1.3 system-ui, sans-serif; }
video { display: block; width: 100%; height: 100%; object-fit: contain; background: #000; }
.menu { position: absolute; top: 8px; right: 8px; opacity: .8; transition: opacity .2s; }
body:hover .menu, .menu:focus-within { opacity: 1; }
.menu select { font: inherit; color: #fff; background: rgba(0, 0, 0, .6);
  border: 1px solid rgba(255, 255, 255, .4); border-radius: 4px; padding: 2px 6px; }
.menu select[hidden] { display: none; }
.vh { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; border: 0; overflow: hidden;
  clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
"""


def _origin(url: str | None) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else None (relative URLs are 'self')."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if not re.fullmatch(r"[A-Za-z0-9.\-]+(?::\d+)?|\[[0-9A-Fa-f:.]+\](?::\d+)?", netloc):
        return None
    return f"{parts.scheme}://{netloc.lower()}"


def embed_csp(*urls: str | None) -> str:
    """The Content-Security-Policy for the embed page.

    Scripts: 'self' (hls.js under the static prefix) and the page's inline script by hash; media:
    'self' and ``blob:`` (MSE); hls.js's transmuxing worker from ``blob:``; inline style. Absolute
    http(s) URLs passed here (the HLS URL, the poster on another host) add their origin to
    ``connect-src``/``media-src``/``img-src``; without them everything must be same-origin.
    No ``frame-ancestors``: the page is meant to be embedded anywhere.
    """
    extra = sorted({o for o in map(_origin, urls) if o})
    ext = "".join(" " + o for o in extra)
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' '{_SCRIPT_HASH}'",
            "worker-src 'self' blob:",
            "style-src 'unsafe-inline'",
            f"media-src 'self' blob:{ext}",
            f"connect-src 'self'{ext}",
            f"img-src 'self' data: blob:{ext}",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


EMBED_CSP = embed_csp()
"""The CSP for a page whose HLS (and poster) URLs are same-origin; else use :func:`embed_csp`."""


def _json_for_script(data: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, ``<!--`` or entity tricks)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def render_embed_page(
    *,
    title: str,
    hls_url: str,
    subtitles: Sequence[EmbedSubtitle],
    poster_url: str | None,
    static_prefix: str = "/static",
    sub_lang: str | None = None,
    autoplay: bool = False,
    muted: bool = False,
) -> str:
    """The embed player page (serve it with :data:`EMBED_CSP` or ``embed_csp(hls_url, poster_url)``).

    ``sub_lang`` is the initial subtitle language (ISO 639-1, Gcore's ``?sub_lang=``; compared by
    primary subtag); a value that is not a language code is ignored. Without it (or without a track
    in that language) the subtitle marked ``default`` is selected, else the playlist's own default.
    """
    lang = sub_lang.strip() if sub_lang else ""
    config = {
        "hlsUrl": hls_url,
        "subLang": lang.lower() if _LANG_RE.fullmatch(lang) else None,
        "autoplay": bool(autoplay),
        "muted": bool(muted),
        "subtitles": [
            {"label": s.label, "language": s.language, "default": bool(s.default)} for s in subtitles
        ],
    }
    prefix = static_prefix.rstrip("/")
    esc = html.escape
    video_attrs = ["controls", "playsinline", 'preload="metadata"']
    if muted:
        video_attrs.append("muted")
    if autoplay:
        video_attrs.append("autoplay")
    if poster_url:
        video_attrs.append(f'poster="{esc(poster_url)}"')
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="strict-origin-when-cross-origin">\n'
        '<link rel="icon" href="data:,">\n'  # no /favicon.ico request per embed load
        f"<title>{esc(title)}</title>\n"
        f"<style>{_STYLE}</style>\n"
        "</head>\n"
        '<body data-state="loading">\n'
        f'<video id="video" {" ".join(video_attrs)} aria-label="{esc(title)}"></video>\n'
        '<div class="menu"><select id="subs" aria-label="Subtitles" hidden>'
        '<option value="-1">Off</option></select></div>\n'
        '<div id="cue" class="vh" aria-live="polite"></div>\n'
        f'<script type="application/json" id="embed-config">{_json_for_script(config)}</script>\n'
        f'<script src="{esc(prefix)}/hls/hls.min.js"></script>\n'
        f"<script>{_SCRIPT}</script>\n"
        "</body>\n</html>\n"
    )
