"""Every redirect the service sends is relative: `Location: /dashboard/`, never `http://<Host>/dashboard/`.

Starlette builds absolute redirects from the request's `Host` header (its trailing-slash redirect,
`request.url_for`), so a request with `Host: evil.test` would be sent to `http://evil.test/…`; behind a cache
or a proxy that keeps the header, that is a redirect to another site. The service never redirects to another
origin, so this middleware keeps only the path, query and fragment of every `Location`, whoever built it.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def relative(location: str) -> str:
    """The path, query and fragment of `location`, starting with exactly one `/`: `//evil.test/` or
    `/\\evil.test/` would be read by browsers as another host."""
    parts = urlsplit(location)
    if not (parts.scheme or parts.netloc or location.startswith(("//", "/\\", "\\"))):
        return location  # already relative to this origin
    path = "/" + parts.path.lstrip("/\\")
    return urlunsplit(("", "", path, parts.query, parts.fragment))


class RelativeRedirectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_relative(message: Message) -> None:
            if message["type"] == "http.response.start" and 300 <= int(message["status"]) < 400:
                headers = []
                for name, value in message.get("headers", []):
                    if name.lower() == b"location":
                        value = relative(value.decode("latin-1")).encode("latin-1")
                    headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_relative)
