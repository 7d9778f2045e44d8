"""The OpenAPI schema as the API really answers (``app.openapi``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi


def gcore_openapi(app: FastAPI) -> dict[str, Any]:
    """The schema without FastAPI's generic 422 ``HTTPValidationError``: request validation answers
    in Gcore's shapes (400 ``{"error"}``, or what a route declares), and each route lists those."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        generic = "#/components/schemas/HTTPValidationError"
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                answer = operation.get("responses", {}).get("422", {})
                if (
                    answer.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
                    == generic
                ):
                    del operation["responses"]["422"]
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        app.openapi_schema = schema
    return app.openapi_schema
