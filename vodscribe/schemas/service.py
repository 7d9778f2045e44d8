"""Bodies of the service's own routes."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = Field(description='"ok", or "unavailable" (503) when a check failed')
    version: str
    checks: dict[str, str] = Field(
        description='"database", "broker", "storage": "ok" or "unavailable: <reason>"'
    )
