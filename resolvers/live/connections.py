"""WebSocket connections: who is on the socket, until when, and presence."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

from starlette.websockets import WebSocket, WebSocketState
from strawberry.exceptions import ConnectionRejectionError

from auth.tokens import bearer_token
from resolvers.context import Context, Socket
from resolvers.live.publisher import presence_changed

logger = logging.getLogger(__name__)

# graphql-ws clients retry a socket closed with 4403 and ask their async
# connectionParams for a fresh token; they give up on 4400 and 4401.
TOKEN_EXPIRED = 4403


async def accept(ctx: Context) -> None:
    """Authenticate a socket from connection_init (or its upgrade request's header).

    A socket without a token is accepted: it may sign in or register, and
    gets UNAUTHENTICATED from anything else. A bad token is refused (4403).
    """
    params: Any = ctx.connection_params
    # Read once, here: the socket's whole life need not keep the init's payload.
    ctx.connection_params = None
    if isinstance(params, dict):
        value = params.get("authorization") or params.get("Authorization")
        if isinstance(value, str):
            ctx.access_token = bearer_token(value) or value.strip() or None
    if not ctx.access_token:
        return
    claims = ctx.services.tokens.read_access_token(ctx.access_token)
    operation = ctx.begin_operation()
    try:
        viewer = await ctx.viewer()
    finally:
        await ctx.end_operation(operation)
    if viewer is None or claims is None:
        raise ConnectionRejectionError({"message": "Invalid or expired access token."})
    socket = Socket(user_id=viewer.id)
    ctx.socket = socket
    websocket = ctx.request
    if isinstance(websocket, WebSocket):
        # A timer, not a task sleeping until then: a socket should cost little.
        delay = max(0.0, (claims.expires_at - datetime.now(UTC)).total_seconds())
        socket.expiry = asyncio.get_running_loop().call_later(delay, _expire, websocket)
    if await ctx.services.presence.add(viewer.id, socket.connection_id):
        await ctx.services.mark_seen([viewer.id])
        await ctx.services.publisher.publish(presence_changed(user_id=viewer.id, online=True))


_closing: set[asyncio.Task[None]] = set()


def _expire(websocket: WebSocket) -> None:
    task = asyncio.ensure_future(_close_expired(websocket))
    _closing.add(task)  # held until done: the loop keeps only weak references
    task.add_done_callback(_closing.discard)


async def _close_expired(websocket: WebSocket) -> None:
    if websocket.application_state == WebSocketState.CONNECTED:
        logger.info("closing a socket whose access token expired")
        try:
            await websocket.close(code=TOKEN_EXPIRED, reason="Access token expired")
        except RuntimeError:
            pass  # closed meanwhile


async def release(ctx: Context) -> None:
    """The socket is gone: stop its timer; the user goes offline with its last socket."""
    socket = ctx.socket
    if socket is None:
        return
    ctx.socket = None
    if socket.expiry is not None:
        socket.expiry.cancel()
    try:
        if await ctx.services.presence.remove(socket.user_id, socket.connection_id):
            await ctx.services.mark_seen([socket.user_id])
            await ctx.services.publisher.publish(
                presence_changed(user_id=socket.user_id, online=False)
            )
    except Exception:
        logger.exception("presence update on disconnect failed")
