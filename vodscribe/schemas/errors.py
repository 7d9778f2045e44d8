"""Error bodies in Gcore's shapes. The AI endpoints answer ``{"error"}`` (``ai_badrequest``); the
video and subtitle endpoints add ``status``; a video's field errors are Rails-style."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    """``{"error": "..."}`` (Gcore's AI task errors)."""

    error: str


class StatusErrorBody(BaseModel):
    """``{"status": 404, "error": "..."}`` (Gcore's video and subtitle errors)."""

    status: int
    error: str


class FieldErrors(BaseModel):
    """``{"errors": {"field": ["message", ...]}}``: a video body that does not validate (422)."""

    errors: dict[str, list[str]] = Field(examples=[{"name": ["can't be blank"]}])


def responses(
    *codes: int, model: type[BaseModel] = ErrorBody, **overrides: type[BaseModel]
) -> dict[int | str, Any]:
    """OpenAPI ``responses=`` for a route: each code with ``model``, or the model given for it as
    ``_422=FieldErrors``."""
    described: dict[int | str, Any] = {code: {"model": model} for code in codes}
    for name, special in overrides.items():
        described[int(name.lstrip("_"))] = {"model": special}
    return described
