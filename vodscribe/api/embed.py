"""The embed player page behind a video's ``iframe_url`` (Gcore-compatible).

A small HTML5 page: a ``<video>`` filling the iframe, playing the video's HLS with hls.js (vendored
under ``vodscribe/api/static/hls/``, served at ``{static_prefix}/hls/hls.min.js``; no CDN) or
natively where the browser plays HLS itself (Safari), plus a subtitle menu ("Off" and one entry per
subtitle rendition of the master playlist). ``sub_lang`` (Gcore's ``?sub_lang=en`` iframe parameter)
picks the initial subtitle track.

Layout: the page is the template ``vodscribe/api/templates/embed.html`` (read once), filled here
with the escaped per-page values; its player script and stylesheet are static files,
``vodscribe/api/static/embed/player.js`` and ``player.css``, served at ``{static_prefix}/embed/``.
The page loads nothing but those, hls.js, the HLS URL (and what its playlists reference) and the
poster. It has no inline script or style, so :data:`EMBED_CSP` / :func:`embed_csp` allow scripts
and styles from ``'self'`` only; the per-page data travels in a JSON block
(``<script type="application/json" id="embed-config">``), which is never executed.

For tests and monitoring the page exposes its progress: ``document.body.dataset.state`` is
``loading``, then ``ready`` (manifest parsed / metadata loaded), ``playing``, or ``error:<details>``
(hls.js's fatal error ``details``, ``media-<code>``, ``unsupported``); the visually hidden
``<div id="cue" aria-live="polite">`` mirrors the text of the active cues of the showing text track.

Serve it with the CSP header, e.g. in a route::

    return HTMLResponse(render_embed_page(...), headers={"Content-Security-Policy": embed_csp(hls_url)})
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from vodscribe.api.pages import json_for_script, player_csp, template

__all__ = ["EMBED_CSP", "EmbedSubtitle", "embed_csp", "render_embed_page"]


@dataclass(frozen=True, slots=True)
class EmbedSubtitle:
    """A subtitle track the video has (as listed in its master playlist)."""

    label: str  # shown in the menu when the playlist's NAME is missing
    language: str  # ISO 639-1, e.g. "en"
    default: bool = False  # selected initially when no ``sub_lang`` matches


_LANG_RE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


def embed_csp(*urls: str | None) -> str:
    """The Content-Security-Policy for the embed page (:func:`~vodscribe.api.pages.player_csp`): the
    HLS URL and the poster on another host add their origins. No ``frame-ancestors``: the page is
    meant to be embedded anywhere."""
    return player_csp(*urls)


EMBED_CSP = embed_csp()
"""The CSP for a page whose HLS (and poster) URLs are same-origin; else use :func:`embed_csp`."""


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
    esc = html.escape
    video_attrs = ["controls", "playsinline", 'preload="metadata"']
    if muted:
        video_attrs.append("muted")
    if autoplay:
        video_attrs.append("autoplay")
    if poster_url:
        video_attrs.append(f'poster="{esc(poster_url)}"')
    return template("embed.html").substitute(
        title=esc(title),
        static=esc(static_prefix.rstrip("/")),
        video_attrs=" ".join(video_attrs),
        config=json_for_script(config),
    )
