"""``/console``: the browser console (see :mod:`vodscribe.api.console`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse

from vodscribe.api.console import console_csp, render_console_page
from vodscribe.api.deps import SettingsDep
from vodscribe.storage.video_files import media_store

router = APIRouter(tags=["Console"])

#: The page holds no data, but it must not be kept by shared caches nor sniffed as anything else.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


@router.get("/console", response_class=HTMLResponse, summary="The browser console (sign in with an API key)")
def console(settings: SettingsDep) -> HTMLResponse:
    # Media may be served from another origin (S3, a CDN): the page's CSP must let the player reach it.
    # (Local files are same-origin: their URL is relative to the empty base given here.)
    media = media_store(settings).url("", "k", "f")
    # With public_url set, the API answers HLS and upload URLs on that origin.
    headers = {**HEADERS, "Content-Security-Policy": console_csp(media, settings.public_url)}
    return HTMLResponse(render_console_page(), headers=headers)


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307)
