"""Route classes whose request validation errors answer in the shapes Gcore's video and subtitle
routes use, instead of FastAPI's generic 422."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from vodscribe.api.errors import ApiError, describe, error_body
from vodscribe.schemas.videos import field_errors_from


def _field_errors(exc: RequestValidationError) -> list[Any] | None:
    """The errors of ``exc`` if all of them are about fields of the JSON body (not a body that is no
    JSON object at all, nor a query or path parameter)."""
    errors = list(exc.errors())
    fields = all(len(e.get("loc", ())) >= 2 and e["loc"][0] == "body" for e in errors)
    if errors and fields and not any(e.get("type") == "json_invalid" for e in errors):
        return errors
    return None


_Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _route_class(name: str, field_errors: Callable[[list[Any]], Response]) -> type[APIRoute]:
    """A route class whose request validation errors answer in Gcore's shapes: body field errors
    through ``field_errors``, anything else (query, path, a body that is no JSON object) 400 with
    ``status``."""

    class GcoreRoute(APIRoute):
        def get_route_handler(self) -> _Handler:
            handler = super().get_route_handler()

            async def route(request: Request) -> Response:
                try:
                    return await handler(request)
                except RequestValidationError as exc:
                    errors = _field_errors(exc)
                    if errors is not None:
                        return field_errors(errors)
                    raise ApiError(400, describe(exc), with_status=True) from exc

            return route

    GcoreRoute.__name__ = GcoreRoute.__qualname__ = name
    return GcoreRoute


def _rails_errors(errors: list[Any]) -> Response:
    # Gcore's video routes: 422 {"errors": {"name": ["must be a string"]}}
    return JSONResponse({"errors": field_errors_from(errors)}, 422)


def _subtitle_errors(errors: list[Any]) -> Response:
    # Gcore's subtitle routes: 422 {"status": 422, "error": "Unprocessable Entity. ..."}
    message = f'Unprocessable Entity. "{errors[0]["loc"][1]}" must be a string.'
    return JSONResponse(error_body(422, message, with_status=True), 422)


VideoRoute = _route_class("VideoRoute", _rails_errors)
SubtitleRoute = _route_class("SubtitleRoute", _subtitle_errors)
