"""uvicorn's WebSocket protocol, letting go of the opening handshake once it is answered.

uvicorn's sans-I/O protocol (the one its ``auto`` choice runs) keeps the
handshake's HTTP request and response, headers and all, for as long as the
socket stays open, though nothing reads them after the 101 is written: the
request is parsed into the ASGI scope at once (and never read again), and
the response is only completed and sent when the application accepts the
socket. Measured with tracemalloc (idle subscribed sockets): some 3 KB per
socket, a tenth of what an idle socket costs the server.

Both are dropped at points uvicorn passes once per socket (the request when
it has been read, the response when the accept has been written and the
keepalive starts), so the frames' path (``send``) is uvicorn's own.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class WebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        self.request = None  # type: ignore[assignment]  # read only by handle_connect

    def start_keepalive(self) -> None:
        # Called once the accept's 101 has been written: the response's last use.
        self.response = None  # type: ignore[assignment]
        super().start_keepalive()
