"""HEAD for every GET route, as HTTP requires of a server: the same status and headers, no body.

FastAPI routes answer only the methods they declare. A route that declares HEAD itself (the media
files, which must not read a file to throw it away) keeps it; any other HEAD request runs as GET
and its body is dropped.
"""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or _answers_head(scope):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


def _answers_head(scope: Scope) -> bool:
    """Whether a route (or mount, such as the static files) takes this HEAD request itself."""
    return any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes)
