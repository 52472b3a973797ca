"""The socket both protocols write through: close reasons that fit, and pre-encoded frames.

A close frame carries at most 123 bytes of reason (RFC 6455, 5.5). Strawberry
builds some reasons from what the client sent -- "Subscriber for <id> already
exists", a syntax error quoting the document -- and passes them on whole; the
websockets library then raises ProtocolError("control frame too long") out of
the handler, the socket drops with 1006 instead of the intended code, and the
ASGI server logs "Exception in ASGI application". This adapter, which both
protocols close sockets through, shortens the reason instead.
"""

from __future__ import annotations

from strawberry.asgi import ASGIWebSocketAdapter

MAX_REASON_BYTES = 123
ELLIPSIS = "..."


def fitting_reason(reason: str) -> str:
    # "replace": a reason quoting a client's lone surrogate still encodes.
    encoded = reason.encode("utf-8", "replace")
    if len(encoded) <= MAX_REASON_BYTES:
        return encoded.decode()
    kept = encoded[: MAX_REASON_BYTES - len(ELLIPSIS)].decode(errors="ignore")
    return kept + ELLIPSIS


class FittingCloseReasonWebSocketAdapter(ASGIWebSocketAdapter):
    async def close(self, code: int, reason: str) -> None:
        await super().close(code, fitting_reason(reason))

    async def send_text(self, text: str) -> None:
        """Send a frame already encoded (subscription results rendered once for many)."""
        await self.ws.send_text(text)
