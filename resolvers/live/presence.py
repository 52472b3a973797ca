"""Who is online: at least one live, signed-in socket on any node.

Every socket is an entry with an expiry that its node refreshes while the
socket lives. A node that dies stops refreshing, so its entries lapse and
its users go offline without anyone having to say so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

logger = logging.getLogger(__name__)

Seen = Callable[[list[int]], Awaitable[None]]


class PresenceStore(Protocol):
    async def add(self, user_id: int, connection_id: str) -> bool:
        """Record a live socket; True when the user was offline until now."""
        ...

    async def remove(self, user_id: int, connection_id: str) -> bool:
        """Forget a socket; True when it was the user's last one."""
        ...

    async def online(self, user_ids: Sequence[int]) -> dict[int, bool]: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class MemoryPresence:
    """One process: its sockets are all there is."""

    def __init__(self) -> None:
        self._sockets: dict[int, set[str]] = {}

    async def add(self, user_id: int, connection_id: str) -> bool:
        sockets = self._sockets.setdefault(user_id, set())
        sockets.add(connection_id)
        return len(sockets) == 1

    async def remove(self, user_id: int, connection_id: str) -> bool:
        sockets = self._sockets.get(user_id, set())
        sockets.discard(connection_id)
        if not sockets:
            self._sockets.pop(user_id, None)
            return True
        return False

    async def online(self, user_ids: Sequence[int]) -> dict[int, bool]:
        return {user_id: bool(self._sockets.get(user_id)) for user_id in user_ids}

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class RedisPresence:
    """Many nodes: a sorted set per user, its members sockets scored by their expiry."""

    def __init__(
        self, url: str, *, ttl_seconds: float, seen: Seen | None = None, namespace: str = "parley"
    ) -> None:
        from redis import asyncio as redis

        self._namespace = namespace
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=5)
        self._ttl = ttl_seconds
        self._seen = seen
        self._local: dict[str, int] = {}
        self._refresher: asyncio.Task[None] | None = None

    def _key(self, user_id: int) -> str:
        return f"{self._namespace}:presence:{user_id}"

    async def add(self, user_id: int, connection_id: str) -> bool:
        self._local[connection_id] = user_id
        now = time.time()
        key = self._key(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zcard(key)
            pipe.zadd(key, {connection_id: now + self._ttl})
            pipe.expire(key, int(self._ttl) + 5)
            _, before, _, _ = await pipe.execute()
        return int(before) == 0

    async def remove(self, user_id: int, connection_id: str) -> bool:
        self._local.pop(connection_id, None)
        key = self._key(user_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(key, connection_id)
            pipe.zcount(key, time.time(), "+inf")
            _, remaining = await pipe.execute()
        return int(remaining) == 0

    async def online(self, user_ids: Sequence[int]) -> dict[int, bool]:
        if not user_ids:
            return {}
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for user_id in user_ids:
                pipe.zcount(self._key(user_id), now, "+inf")
            counts = await pipe.execute()
        return {user_id: int(count) > 0 for user_id, count in zip(user_ids, counts, strict=True)}

    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh(), name="presence refresh")

    async def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            await asyncio.gather(self._refresher, return_exceptions=True)
        await self._redis.aclose()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            if not self._local:
                continue
            expiry = time.time() + self._ttl
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for connection_id, user_id in list(self._local.items()):
                        pipe.zadd(self._key(user_id), {connection_id: expiry})
                        pipe.expire(self._key(user_id), int(self._ttl) + 5)
                    await pipe.execute()
                if self._seen is not None:
                    # lastSeenAt stays close to the truth even if this node dies.
                    await self._seen(sorted(set(self._local.values())))
            except Exception:
                logger.exception("presence refresh failed; retrying")


def create_presence(
    broadcast_url: str,
    *,
    ttl_seconds: float = 30.0,
    seen: Seen | None = None,
    namespace: str = "parley",
) -> PresenceStore:
    """Redis-backed when the nodes share Redis; otherwise this process's own sockets.

    ``seen(user_ids)`` is called as live sockets are refreshed, to keep their
    users' lastSeenAt current.
    """
    if broadcast_url.startswith(("redis://", "rediss://")):
        return RedisPresence(broadcast_url, ttl_seconds=ttl_seconds, seen=seen, namespace=namespace)
    return MemoryPresence()
