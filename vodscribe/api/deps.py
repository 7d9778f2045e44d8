"""FastAPI dependencies: settings, a database session per request, and the authenticated client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from vodscribe.api.errors import ApiError
from vodscribe.config import Settings
from vodscribe.db.session import get_sessionmaker, missing_database_file
from vodscribe.db.tables import Client
from vodscribe.services.clients import authenticate


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    if missing_database_file(settings.db_url) is not None:
        raise ApiError(503, "The database is unavailable; try again later.")
    session = get_sessionmaker(settings.db_url)()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def current_client(request: Request, session: SessionDep) -> Client:
    """``Authorization: APIKey <token>``; the scheme word is matched case-insensitively."""
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, "Authentication credentials were not provided.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "apikey" or not token.strip():
        raise ApiError(401, "Given token not valid for any token type")
    client = authenticate(session, token.strip())
    if client is None:
        raise ApiError(401, "Token is invalid or expired")
    wait = request.app.state.limiter.hit(client.id)
    if wait > 0:
        raise ApiError(429, "Too many requests, try later", headers={"Retry-After": str(max(1, round(wait)))})
    return client


ClientDep = Annotated[Client, Depends(current_client)]
