"""What the HTML pages (the embed player, the console) share: templates read from the package, JSON
that is safe inside a ``<script>`` element, and the origins a Content-Security-Policy may name."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from string import Template
from urllib.parse import urlsplit

__all__ = ["json_for_script", "origin", "origins", "player_csp", "template"]


@cache
def template(name: str) -> Template:
    """``vodscribe/api/templates/{name}``, read from the package once per process.

    ``$name`` placeholders (``string.Template``): every value must be escaped by the caller before it
    goes in; ``substitute`` fails loudly on a missing one."""
    return Template(files("vodscribe.api").joinpath("templates", name).read_text(encoding="utf-8"))


def origin(url: str | None) -> str | None:
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


def origins(*urls: str | None) -> str:
    """The distinct origins of ``urls``, each after a space, ready to append to a CSP source list."""
    return "".join(" " + o for o in sorted({o for o in map(origin, urls) if o}))


def json_for_script(data: object) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, ``<!--`` or entity tricks)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def player_csp(*urls: str | None, framed_by: str | None = None) -> str:
    """The Content-Security-Policy of a page with the HLS player.

    Scripts and styles: 'self' only (the pages have no inline script or style); media: 'self' and
    ``blob:`` (hls.js feeds MSE from blobs); hls.js's transmuxing worker from ``blob:``. Absolute
    http(s) URLs passed here (the HLS URL, a poster or the media store on another host) add their
    origin to ``connect-src``/``media-src``/``img-src``; without them everything must be same-origin.
    ``framed_by`` is the ``frame-ancestors`` source list; None leaves framing open."""
    ext = origins(*urls)
    directives = [
        "default-src 'none'",
        "script-src 'self'",
        "worker-src 'self' blob:",
        "style-src 'self'",
        f"media-src 'self' blob:{ext}",
        f"connect-src 'self'{ext}",
        f"img-src 'self' data: blob:{ext}",
    ]
    if framed_by is not None:
        directives.append(f"frame-ancestors {framed_by}")
    return "; ".join([*directives, "base-uri 'none'", "form-action 'none'"])
