"""``X-Request-ID``: each request has an id, the client's when it sends a sane one, else a new one;
it is answered in the response's ``X-Request-ID`` and is on every log line of the request's work
(:mod:`vodscribe.logs`)."""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vodscribe.logs import REQUEST_ID

HEADER = b"x-request-id"
#: What a client's own id may be: short, and nothing a log line could be forged with.
SANE = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestId:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"")
        request_id = given.decode() if SANE.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID.set(request_id)

        async def with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, request_id.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, with_id)
        finally:
            REQUEST_ID.reset(token)
