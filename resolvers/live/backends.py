"""broadcaster backends that close the gaps of the ones broadcaster 0.3.1 ships.

- Redis: the stock listener dies with its connection and never comes back,
  so events silently stop. This one reconnects with backoff, subscribes
  again to every channel, and reports each reconnection so that listeners
  can fill what they missed from the database.
- PostgreSQL: the stock backend publishes and listens on one connection, so
  concurrent publishes fail ("another operation is in progress"), and it
  never reconnects. This one publishes on its own serialised connection,
  refuses payloads over NOTIFY's 8000-byte limit up front, and reconnects
  its listening connection.

Each backend is imported only when its URL scheme is chosen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from broadcaster import Broadcast, BroadcastBackend, Event

logger = logging.getLogger(__name__)

Reconnected = Callable[[], None]
NOTIFY_LIMIT = 7999  # PostgreSQL's NOTIFY payload must be shorter than 8000 bytes


def create_broadcast(url: str, *, on_reconnect: Reconnected) -> Broadcast:
    """broadcaster's Broadcast for the URL, with our backend where its own falls short."""
    scheme = urlparse(url).scheme
    if scheme in ("redis", "rediss"):
        return Broadcast(backend=ReconnectingRedisBackend(url, on_reconnect=on_reconnect))
    if scheme in ("postgres", "postgresql"):
        return Broadcast(backend=ReconnectingPostgresBackend(url, on_reconnect=on_reconnect))
    if scheme == "memory":
        return Broadcast(url)  # one process: nothing to lose or reconnect
    raise ValueError(f"BROADCAST_URL: unsupported scheme {scheme!r} (memory, redis, postgres)")


class ReconnectingRedisBackend(BroadcastBackend):
    def __init__(self, url: str, *, on_reconnect: Reconnected) -> None:
        self._url = url
        self._on_reconnect = on_reconnect
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._listener: asyncio.Task[None] | None = None
        self._pubsub: Any = None
        self._wake = asyncio.Event()

    async def connect(self) -> None:
        from redis import asyncio as redis

        self._publisher = redis.Redis.from_url(self._url, socket_connect_timeout=5)
        self._listener = asyncio.create_task(self._listen(), name="parley-redis-listener")

    async def disconnect(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            try:
                await self._listener
            except asyncio.CancelledError:
                pass
        await self._close_pubsub()
        await self._publisher.aclose()

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                await pubsub.subscribe(channel)
            except Exception:
                # The listener is reconnecting; it subscribes to every channel.
                logger.debug("subscribe to %s deferred until Redis is back", channel)
        self._wake.set()

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                await pubsub.unsubscribe(channel)
            except Exception:
                logger.debug("unsubscribe from %s failed; the connection is gone anyway", channel)

    async def publish(self, channel: str, message: Any) -> None:
        await self._publisher.publish(channel, message)

    async def next_published(self) -> Event:
        return await self._queue.get()

    async def _listen(self) -> None:
        from redis import asyncio as redis

        delay, connected_before = 0.1, False
        while True:
            try:
                self._pubsub = redis.Redis.from_url(
                    self._url, socket_connect_timeout=5, health_check_interval=10
                ).pubsub(ignore_subscribe_messages=True)
                await self._pubsub.ping()  # connects, or raises while Redis is down
                if self._channels:
                    await self._pubsub.subscribe(*self._channels)
                if connected_before:
                    logger.warning("Redis pub/sub connection is back")
                    self._on_reconnect()
                connected_before, delay = True, 0.1
                await self._pump()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("Redis pub/sub lost (%s); retrying in %.1fs", error, delay)
                await self._close_pubsub()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _pump(self) -> None:
        while True:
            if not self._pubsub.subscribed:
                # redis-py reads nothing until something is subscribed.
                self._wake.clear()
                await self._wake.wait()
                continue
            message = await self._pubsub.get_message(timeout=1.0)
            if message is not None and message.get("type") == "message":
                channel, data = message["channel"], message["data"]
                self._queue.put_nowait(
                    Event(
                        channel=channel.decode() if isinstance(channel, bytes) else channel,
                        message=data.decode() if isinstance(data, bytes) else data,
                    )
                )

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:
                logger.debug("closing a broken Redis pub/sub connection failed", exc_info=True)


class ReconnectingPostgresBackend(BroadcastBackend):
    def __init__(self, url: str, *, on_reconnect: Reconnected) -> None:
        self._url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        self._on_reconnect = on_reconnect
        self._channels: set[str] = set()
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._publish_lock = asyncio.Lock()
        # asyncpg runs one command at a time per connection: LISTEN/UNLISTEN
        # for channels subscribed at once must take turns.
        self._listen_lock = asyncio.Lock()
        self._listen_connection: Any = None
        self._publish_connection: Any = None
        self._watchdog: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self._listen_connection = await self._open_listener()
        self._watchdog = asyncio.create_task(self._watch(), name="parley-pg-listener")

    async def disconnect(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        for connection in (self._listen_connection, self._publish_connection):
            if connection is not None and not connection.is_closed():
                await connection.close()

    async def _open_listener(self) -> Any:
        import asyncpg

        connection = await asyncpg.connect(self._url, timeout=5)
        for channel in self._channels:
            await connection.add_listener(channel, self._deliver)
        return connection

    async def _watch(self) -> None:
        """Reopen the listening connection whenever it is lost."""
        delay = 0.1
        while True:
            await asyncio.sleep(1.0)
            connection = self._listen_connection
            if connection is not None and not connection.is_closed():
                continue
            try:
                async with self._listen_lock:
                    self._listen_connection = await self._open_listener()
                logger.warning("PostgreSQL LISTEN connection is back")
                delay = 0.1
                self._on_reconnect()
            except Exception as error:
                logger.warning("PostgreSQL LISTEN reconnect failed (%s)", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def subscribe(self, channel: str) -> None:
        async with self._listen_lock:
            self._channels.add(channel)
            connection = self._listen_connection
            if connection is not None and not connection.is_closed():
                await connection.add_listener(channel, self._deliver)

    async def unsubscribe(self, channel: str) -> None:
        async with self._listen_lock:
            self._channels.discard(channel)
            connection = self._listen_connection
            if connection is not None and not connection.is_closed():
                await connection.remove_listener(channel, self._deliver)

    async def publish(self, channel: str, message: str) -> None:
        if len(message.encode()) > NOTIFY_LIMIT:
            raise ValueError(f"NOTIFY payload of {len(message.encode())} bytes is over the limit")
        import asyncpg

        async with self._publish_lock:
            if self._publish_connection is None or self._publish_connection.is_closed():
                self._publish_connection = await asyncpg.connect(self._url, timeout=5)
            await self._publish_connection.execute("SELECT pg_notify($1, $2)", channel, message)

    def _deliver(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        self._queue.put_nowait(Event(channel=channel, message=payload))

    async def next_published(self) -> Event:
        return await self._queue.get()
