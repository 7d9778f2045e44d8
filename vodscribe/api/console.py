"""The browser console at ``/console``: a single page that does everything through the public API.

The page is the template ``templates/console.html``; its code is ES modules under
``static/console/`` (``app.js`` and the modules it imports), its upload client tus-js-client and its
player hls.js, both vendored. Nothing is inline, so :func:`console_csp` allows scripts and styles
from ``'self'`` only. The API key lives in the tab's ``sessionStorage`` and travels only in the
``Authorization`` header of the page's own requests; the page is served to anyone, it holds nothing.

Per-page data (the language table, the subtitle reading rules, the static prefix) travels in a JSON block
(``<script type="application/json" id="console-config">``), which is never executed.
"""

from __future__ import annotations

import html
from functools import cache

from vodscribe import __version__, languages
from vodscribe.api.pages import json_for_script, player_csp, template
from vodscribe.speech.cues import READING_RULES

__all__ = ["console_csp", "render_console_page"]


def console_csp(*urls: str | None) -> str:
    """The console's Content-Security-Policy (:func:`~vodscribe.api.pages.player_csp`): requests to
    'self' (the API, the TUS server, the media files); ``urls`` add their origins to media, images
    and requests (the media store's public URL when it is on another host: S3 or a CDN).
    ``frame-ancestors 'none'``: no other site may frame the console (clickjacking); the embed page
    is the one meant for iframes."""
    return player_csp(*urls, framed_by="'none'")


@cache
def render_console_page(*, static_prefix: str = "/static") -> str:
    """The console's HTML: the shell the modules fill, with the language table they name codes by
    and the reading rules the subtitle editor warns against, those cues are built to (the same for
    every request: built once)."""
    rules = READING_RULES
    config = {
        "version": __version__,
        "languages": [{"code": lang.b, "name": lang.name} for lang in languages.LANGUAGES],
        "readingRules": {
            "maxLineChars": rules.max_line_chars,
            "maxLines": rules.max_lines,
            "maxCharsPerSecond": rules.max_cps,
            "minSeconds": rules.min_duration,
            "maxSeconds": rules.max_duration,
        },
    }
    static = html.escape(static_prefix.rstrip("/"))
    return template("console.html").substitute(
        static=static, version=html.escape(__version__), config=json_for_script(config)
    )
