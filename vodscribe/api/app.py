"""The FastAPI application (Gcore Streaming API paths at the root, OpenAPI docs at /docs)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from vodscribe import __version__
from vodscribe.api import errors, metrics
from vodscribe.api.body_limit import BodyLimit
from vodscribe.api.head import HeadAsGet
from vodscribe.api.health import health as service_health
from vodscribe.api.openapi import gcore_openapi
from vodscribe.api.rate_limit import make_limiter
from vodscribe.api.request_id import RequestId
from vodscribe.api.routers import (
    ai_tasks,
    asr_webservice,
    console,
    openai_audio,
    public_files,
    subtitles,
    tus,
    videos,
    vocabularies,
    webhooks,
)
from vodscribe.config import Settings, get_settings
from vodscribe.logs import setup as setup_logging
from vodscribe.queue import celery_for
from vodscribe.schemas.service import Health

#: The speech requests read their own bodies, within the upload limit (api.uploaded_form).
SPEECH_PATHS = ("/v1/audio/", "/asr", "/detect-language")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="vodscribe",
        version=__version__,
        description="Self-hosted, Gcore-compatible video platform API with AI subtitles. "
        "Authenticate with `Authorization: APIKey <key>`.",
    )
    app.state.settings = settings
    app.state.limiter = make_limiter(settings)
    celery_for(settings)  # creates the embedded broker's folders, which /health checks
    errors.install(app)
    app.openapi = lambda: gcore_openapi(app)  # type: ignore[method-assign]
    app.add_middleware(
        BodyLimit,
        max_bytes=settings.max_body_bytes,
        larger={videos.BATCH_PATH: settings.max_batch_body_bytes},
        streamed=(tus.PREFIX, *SPEECH_PATHS),
    )
    app.add_middleware(HeadAsGet)
    app.add_middleware(RequestId)  # outermost: the id covers the whole request, errors included
    app.include_router(ai_tasks.router)
    app.include_router(vocabularies.router)
    app.include_router(openai_audio.router)
    app.include_router(asr_webservice.router)
    app.include_router(videos.router)
    app.include_router(subtitles.router)
    app.include_router(public_files.router)
    app.include_router(tus.router)
    app.include_router(webhooks.router)
    app.include_router(console.router)
    app.include_router(metrics.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    @app.get("/health", tags=["service"], response_model=Health, responses={503: {"model": Health}})
    def health() -> JSONResponse:
        """Ready to serve: the database, the broker and the file storage answer (else 503)."""
        checks = service_health(settings)
        ok = all(value == "ok" for value in checks.values())
        body = Health(status="ok" if ok else "unavailable", version=__version__, checks=checks)
        return JSONResponse(body.model_dump(), 200 if ok else 503)

    @app.get("/health/live", tags=["service"], response_model=Health)
    def live() -> Health:
        """The process answers (liveness; says nothing about the database or the broker)."""
        return Health(status="ok", version=__version__, checks={})

    return app


def app_of_process() -> FastAPI:
    """The app of one of several API processes (uvicorn's factory, in a process of its own): its
    logs set up as ``vodscribe serve`` sets up its own."""
    settings = get_settings()
    setup_logging("INFO", settings.log_format)
    return create_app(settings)
