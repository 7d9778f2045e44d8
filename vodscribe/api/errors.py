"""Error bodies in Gcore's shapes: ``{"error": "..."}`` (with ``status`` where Gcore has it), and the
app's handlers that answer with them (a 405 lists the methods the path allows)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm.exc import ObjectDeletedError, StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)

NOT_FOUND = "Not Found. Entity you are looking for was not found, please check the initial parameters"


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, *, with_status: bool = False, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.with_status = with_status
        self.headers = headers or {}


def error_body(status: int, message: str, *, with_status: bool = False) -> dict[str, Any]:
    return {"status": status, "error": message} if with_status else {"error": message}


#: Paths that answer errors in another dialect's shape: OpenAI's, and FastAPI's ``{"detail"}`` as
#: whisper-asr-webservice answers them.
OPENAI_PREFIX = "/v1/"
DETAIL_PATHS = ("/asr", "/detect-language")


def dialect_body(path: str, status: int, message: str) -> dict[str, Any] | None:
    """The error body of a speech dialect's path; None for Gcore's paths."""
    if path.startswith(OPENAI_PREFIX):
        kind = "server_error" if status >= 500 else "invalid_request_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": None}}
    if path in DETAIL_PATHS:
        return {"detail": message}
    return None


def describe(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        field = ".".join(loc)
        if err.get("type") == "missing" and field:
            parts.append(f'"{field}" is not specified')
        elif field:
            parts.append(f'"{field}": {err.get("msg")}')
        else:
            parts.append(str(err.get("msg")))
    return "; ".join(parts) or "Invalid request"


def _leaves(routes: Sequence[Any]) -> Iterator[Any]:
    """The routes themselves, looking inside included routers (FastAPI wraps each one)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaves(inner.routes)
        else:
            yield route


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (a 405's ``Allow``); GET implies HEAD. A path
    that a route names literally (``/streaming/videos/batch``) is that route's alone, not also one
    of the ``/{video_id}`` it would fit."""
    found: list[tuple[bool, set[str]]] = []
    for route in _leaves(request.app.router.routes):
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            found.append(
                (not getattr(route, "param_convertors", None), set(getattr(route, "methods", None) or ()))
            )
    literal = any(is_literal for is_literal, _ in found)
    methods: set[str] = set()
    for is_literal, route_methods in found:
        if is_literal or not literal:
            methods |= route_methods
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "APIKey", **exc.headers} if exc.status == 401 else exc.headers
        if exc.status == 503:
            headers = {"Retry-After": "5", **headers}
        return JSONResponse(
            error_body(exc.status, exc.message, with_status=exc.with_status), exc.status, headers=headers
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        # The database is unreachable (a restart, a failover) or busy: nothing was done, and the
        # client may retry, as for a broker that refuses a job.
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        message = "The database is unavailable; try again shortly."
        return JSONResponse(error_body(503, message), 503, headers={"Retry-After": "5"})

    @app.exception_handler(StaleDataError)
    @app.exception_handler(ObjectDeletedError)
    async def _gone(_: Request, exc: Exception) -> JSONResponse:
        # The row was deleted by a concurrent request between our read and our write.
        return JSONResponse(error_body(404, NOT_FOUND, with_status=True), 404)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # AI endpoints answer bad input with 400 {"error"} (Gcore's ai_badrequest).
        message = describe(exc)
        return JSONResponse(dialect_body(request.url.path, 400, message) or error_body(400, message), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Error"
        if exc.status_code == 404:
            message = NOT_FOUND
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return JSONResponse(
            error_body(exc.status_code, message, with_status=True), exc.status_code, headers=headers
        )
