"""JSON answers serialised once, by pydantic (in Rust), from the response models the services build.

A route that returns a model has FastAPI validate it again against the route's ``response_model`` (in
the thread pool, for a sync route) and only then serialise it. The hot read routes return these
instead: the models already are the response models, and the route keeps ``response_model`` for
its OpenAPI schema. Unset fields are left out, as ``response_model_exclude_unset`` leaves them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter
from starlette.responses import Response

JSON = "application/json"


def model_response(model: BaseModel, headers: Mapping[str, str] | None = None) -> Response:
    return Response(model.model_dump_json(exclude_unset=True), 200, headers, media_type=JSON)


@cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def models_response(
    model: type[BaseModel], items: Sequence[BaseModel], headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON array of ``model`` items."""
    return Response(_list_of(model).dump_json(list(items), exclude_unset=True), 200, headers, media_type=JSON)
