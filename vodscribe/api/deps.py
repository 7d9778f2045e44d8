"""FastAPI dependencies: settings, a database session per request, and the authenticated client.

FastAPI runs each sync dependency (and a sync generator's entry and exit) in its thread pool, one
hop per step, and each hop costs more than a small query. What does no I/O is ``async`` here, so it
stays on the event loop; the hot read routes go further with :data:`Read`: one hop for all of it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from vodscribe.api.errors import ApiError
from vodscribe.config import Settings
from vodscribe.db.session import get_sessionmaker, missing_database_file
from vodscribe.db.tables import Client
from vodscribe.services.clients import anonymous_client, authenticate


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def _new_session(settings: Settings) -> Session:
    """A session, which connects when first used (503 when the SQLite file was deleted under us)."""
    if missing_database_file(settings.db_url) is not None:  # one stat
        raise ApiError(503, "The database is unavailable; try again later.")
    return get_sessionmaker(settings.db_url)()


async def get_session(settings: SettingsDep) -> AsyncIterator[Session]:
    session = _new_session(settings)
    try:
        yield session
    finally:
        await run_in_threadpool(session.close)  # gives the connection back: database I/O


SessionDep = Annotated[Session, Depends(get_session)]


def current_client(request: Request, session: SessionDep) -> Client:
    """``Authorization: APIKey <token>``; the scheme word is matched case-insensitively."""
    return client_of(request, session)


ClientDep = Annotated[Client, Depends(current_client)]


def api_key(request: Request) -> str:
    """The request's API key, as written (401 when there is none)."""
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, "Authentication credentials were not provided.")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "apikey" or not token.strip():
        raise ApiError(401, "Given token not valid for any token type")
    return token.strip()


def speech_api_key(request: Request) -> str | None:
    """A speech request's key (None when it sent none): ``APIKey`` as everywhere, ``Bearer`` as the
    OpenAI SDKs send it, or ``Basic`` as an HTTP client sends the credentials of a URL
    (``http://vodscribe:KEY@host``, the only way Bazarr's whisper provider can send one): the
    password, or the user name where the password is empty."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() in ("apikey", "bearer") and token:
        return token
    if scheme.lower() == "basic" and token:
        try:
            user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise ApiError(401, "Malformed Basic credentials") from None
        return password or user
    raise ApiError(401, "Given token not valid for any token type")


def speech_client(request: Request, session: Session, settings: Settings) -> Client:
    """The client of a speech request: its key's, within its rate limit, or the anonymous client's
    where ``anonymous_speech_requests`` allows a request without one (401 otherwise)."""
    key = speech_api_key(request)
    if key is None:
        if not settings.anonymous_speech_requests:
            raise ApiError(401, "Authentication credentials were not provided.")
        client = anonymous_client(session)
    else:
        found = authenticate(session, key)
        if found is None:
            raise ApiError(401, "Token is invalid or expired")
        client = found
    wait = request.app.state.limiter.hit(client.id)
    if wait > 0:
        raise ApiError(429, "Too many requests, try later", headers={"Retry-After": str(max(1, round(wait)))})
    return client


Work = Callable[[Session, Client], Response]
Reader = Callable[[Work], Awaitable[Response]]


async def reader(request: Request, settings: SettingsDep) -> Reader:
    """For the hot read routes: ``await read(work)`` does the route's whole work in one trip to the
    thread pool (the session, the client's lookup, the queries, the serialisation) instead of a hop
    for each dependency and one for the route. Errors are the other dependencies' own; a request
    with no key is answered 401 here, before its parameters are checked, as where the client is a
    dependency."""
    api_key(request)
    limiter = _read_limiter(request, settings)

    async def read(work: Work) -> Response:
        def in_thread() -> Response:
            with _new_session(settings) as session:
                return work(session, client_of(request, session))

        return await anyio.to_thread.run_sync(in_thread, limiter=limiter)

    return read


Read = Annotated[Reader, Depends(reader)]


def _read_limiter(request: Request, settings: Settings) -> anyio.CapacityLimiter:
    """A few threads for all reads (``read_threads``), not the pool's 40: on 2 cores, 20 connections
    reading one task through 40 threads fought over the GIL (p99 151 ms on SQLite); through 2 they
    wait on the event loop instead (p99 51 ms). Made on first use: it belongs to the running loop."""
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "read_limiter", None)
    if limiter is None:
        limiter = request.app.state.read_limiter = anyio.CapacityLimiter(settings.read_threads)
    return limiter


def client_of(request: Request, session: Session) -> Client:
    """The client the request's API key belongs to, within its rate limit (else 401 or 429)."""
    client = authenticate(session, api_key(request))
    if client is None:
        raise ApiError(401, "Token is invalid or expired")
    wait = request.app.state.limiter.hit(client.id)
    if wait > 0:
        raise ApiError(429, "Too many requests, try later", headers={"Retry-After": str(max(1, round(wait)))})
    return client
