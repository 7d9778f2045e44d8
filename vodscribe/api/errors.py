"""Error bodies in Gcore's shapes: ``{"error": "..."}`` (with ``status`` where Gcore has it)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


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


def _describe(exc: RequestValidationError) -> str:
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


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "APIKey", **exc.headers} if exc.status == 401 else exc.headers
        return JSONResponse(
            error_body(exc.status, exc.message, with_status=exc.with_status), exc.status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # AI endpoints answer bad input with 400 {"error"} (Gcore's ai_badrequest).
        return JSONResponse(error_body(400, _describe(exc)), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Error"
        if exc.status_code == 404:
            message = (
                "Not Found. Entity you are looking for was not found, please check the initial parameters"
            )
        return JSONResponse(error_body(exc.status_code, message, with_status=True), exc.status_code)
