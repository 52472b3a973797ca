"""Our small interface over broadcaster: one subscription per channel per process.

broadcaster gives every subscriber its own unbounded queue, and two
coroutines subscribing to a new channel at once race (the second replaces
the first's queue set). The Broker holds exactly one broadcaster
subscription per channel, created under a lock, drains it at once into
synchronous handlers, and never buffers for a listener: handlers only note
what was announced, and each listener catches up at its own pace from the
database or a bounded shared buffer.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from resolvers.live.backends import create_broadcast

logger = logging.getLogger(__name__)

Handler = Callable[[str], None]


@dataclass
class _Channel:
    handlers: set[Handler] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None
    failure: BaseException | None = None


class Broker:
    def __init__(self, url: str) -> None:
        self.url = url
        self._broadcast = create_broadcast(url, on_reconnect=self._reconnected)
        self._channels: dict[str, _Channel] = {}
        self._lock = asyncio.Lock()
        self._reconnect_handlers: set[Callable[[], None]] = set()

    async def connect(self) -> None:
        await self._broadcast.connect()

    async def disconnect(self) -> None:
        for channel in list(self._channels.values()):
            if channel.pump is not None:
                channel.pump.cancel()
        await self._broadcast.disconnect()

    async def publish(self, channel: str, message: str) -> None:
        await self._broadcast.publish(channel, message)

    @asynccontextmanager
    async def listen(self, channel: str, handler: Handler) -> AsyncIterator[None]:
        """Call ``handler(message)`` for every message on channel while inside.

        On entry the process is subscribed, so anything published afterwards
        reaches the handler (barring a broker failure, which on_reconnect reports).
        Handlers run on the event loop and must not block.
        """
        async with self._lock:
            state = self._channels.get(channel)
            if state is None:
                state = self._channels[channel] = _Channel()
                # In a context of its own: it serves every later listener, and
                # must not keep the first one's (its operation, its socket).
                state.pump = asyncio.create_task(
                    self._pump(channel, state),
                    name=f"pump {channel}",
                    context=contextvars.Context(),
                )
            state.handlers.add(handler)
        try:
            await state.ready.wait()
            if state.failure is not None:
                raise RuntimeError(f"could not subscribe to {channel}") from state.failure
            yield
        finally:
            async with self._lock:
                state.handlers.discard(handler)
                if not state.handlers and self._channels.get(channel) is state:
                    del self._channels[channel]
                    if state.pump is not None:
                        # Wait for the unsubscribe under the lock, so that a new
                        # listener of this channel subscribes only afterwards.
                        state.pump.cancel()
                        await asyncio.gather(state.pump, return_exceptions=True)

    def on_reconnect(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register a callback for broker reconnections; returns its remover."""
        self._reconnect_handlers.add(callback)
        return lambda: self._reconnect_handlers.discard(callback)

    async def _pump(self, channel: str, state: _Channel) -> None:
        try:
            async with self._broadcast.subscribe(channel) as subscriber:
                state.ready.set()
                while True:
                    event = await subscriber.get()
                    for handler in list(state.handlers):
                        try:
                            handler(event.message)
                        except Exception:
                            logger.exception("handler for %s failed", channel)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            # Listeners waiting to start are told; a channel that broke later
            # is dropped, so the next listener subscribes afresh.
            logger.exception("subscription to %s failed", channel)
            state.failure = error
            state.ready.set()
            if self._channels.get(channel) is state:
                del self._channels[channel]

    def _reconnected(self) -> None:
        for callback in list(self._reconnect_handlers):
            try:
                callback()
            except Exception:
                logger.exception("reconnect handler failed")
