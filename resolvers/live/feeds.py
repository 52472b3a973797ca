"""Per-process conversation feeds: each event is loaded once, whoever listens.

A feed follows one conversation for as long as anyone in this process
listens to it. The broker's announcements (small envelopes with a seq) only
say how far the timeline has got; the feed then reads every event after the
last one it holds from the database, in seq order, so a dropped, late or
reordered announcement can never leave a gap. A periodic check of
``conversations.last_seq`` catches announcements that never arrived, and a
broker reconnection triggers the same catch-up at once.

Listeners never get a queue of their own: they keep a cursor and read from
the feed's bounded window of recent events.

A write made in this process offers the events it made (``Feeds.offer``,
snapshots built from the rows it wrote). The feed takes an offered event
in place of reading it, but only as the next seq it lacks: the order and
gap rules above stay those of the database. An offered event shows the
rows as the write saw them (its author as read when the operation began);
a read shows them as they are when it runs. Rows the write does not lock
can change in between either way, as they can between two processes'
reads of the same event.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from itertools import islice

from sqlalchemy.ext.asyncio import AsyncSession

from db import conversations
from resolvers.live.broker import Broker
from resolvers.live.publisher import conversation_channel, read_timeline_seq
from resolvers.live.snapshots import SharedEvent, load_events

logger = logging.getLogger(__name__)

WINDOW = 512  # recent events a feed keeps for listeners that lag a little
BATCH = 200  # events read from the database at a time


class Feed:
    def __init__(self, feeds: Feeds, conversation_id: int) -> None:
        self._feeds = feeds
        self.conversation_id = conversation_id
        self.loaded_through = 0
        self.window: deque[SharedEvent] = deque(maxlen=WINDOW)
        self._offered: dict[int, SharedEvent] = {}
        self.watchers: set[Callable[[list[SharedEvent]], None]] = set()
        self._announced = 0
        self._unsure = False  # announcements may have been lost: read even if none is due
        self._wanted = asyncio.Event()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._subscription = AsyncExitStack()
        # Its start, a task of its own: the listener that began it may leave
        # (be cancelled) while others wait for it.
        self.starting: asyncio.Task[None] | None = None
        self.listeners = 0

    def announce(self, seq: int) -> None:
        if seq > self.loaded_through:
            self._announced = max(self._announced, seq)
            self._wanted.set()

    def catch_up(self) -> None:
        """Read whatever the database holds past the feed, announced or not."""
        self._unsure = True
        self._wanted.set()

    def offer(self, event: SharedEvent) -> None:
        """An event this process just committed, to be taken instead of read."""
        if self._task is None or event.seq <= self.loaded_through:
            return  # not started (where it starts from is not known yet), or held
        if len(self._offered) >= BATCH:
            # Offers that never became the next seq (it was read, or lost).
            self._offered.clear()
        self._offered[event.seq] = event
        self.announce(event.seq)

    def _take_offered(self) -> list[SharedEvent]:
        """The offered events that continue the feed without a gap, in seq order."""
        taken: list[SharedEvent] = []
        while (event := self._offered.pop(self.loaded_through + 1 + len(taken), None)) is not None:
            taken.append(event)
        if self._offered:
            for seq in [seq for seq in self._offered if seq <= self.loaded_through + len(taken)]:
                del self._offered[seq]
        return taken

    def after(self, cursor: int) -> list[SharedEvent] | None:
        """Events with seq > cursor from the window; None when the window no longer has them."""
        if cursor >= self.loaded_through:
            return []
        if not self.window or self.window[0].seq > cursor + 1:
            return None
        return list(islice(self.window, cursor + 1 - self.window[0].seq, None))

    async def wait_beyond(self, cursor: int) -> None:
        """Return once events past cursor are loaded."""
        while self.loaded_through <= cursor:
            await self._changed.wait()

    async def start(self) -> None:
        # Subscribed first, then read how far the timeline is: nothing
        # committed in between can be missed.
        await self._subscription.enter_async_context(
            self._feeds.broker.listen(conversation_channel(self.conversation_id), self.on_message)
        )
        async with self._feeds.short_session() as session:
            seqs = await conversations.last_seqs(session, conversation_ids=[self.conversation_id])
        self.loaded_through = seqs.get(self.conversation_id, 0)
        # An announcement handled while that read was on its way stays due.
        self._announced = max(self._announced, self.loaded_through)
        # A context of its own: the feed outlives the operation that started
        # it, and must not keep that operation's scope and socket alive.
        self._task = asyncio.create_task(
            self._run(), name=f"feed {self.conversation_id}", context=contextvars.Context()
        )

    async def stop(self) -> None:
        if self.starting is not None and not self.starting.done():
            self.starting.cancel()
            await asyncio.gather(self.starting, return_exceptions=True)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._subscription.aclose()

    def on_message(self, message: str) -> None:
        seq = read_timeline_seq(message)
        if seq is None:
            logger.warning("ignoring malformed envelope %r", message)
        else:
            self.announce(seq)

    async def _run(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                await self._load()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("feed %s could not load events; retrying", self.conversation_id)
                await asyncio.sleep(1.0)
                self._wanted.set()

    async def _load(self) -> None:
        full = False  # the last read filled a batch: the database may hold more
        while True:
            events = self._take_offered()
            read = not events
            if read:
                if not full and self.loaded_through >= self._announced and not self._unsure:
                    # Nothing is due: no announcement is ahead, no catch-up was
                    # asked for (a wake by the announcement of an event an offer
                    # brought meanwhile reads nothing).
                    return
                unsure, self._unsure = self._unsure, False
                try:
                    async with self._feeds.short_session() as session:
                        events = await load_events(
                            session,
                            conversation_id=self.conversation_id,
                            after_seq=self.loaded_through,
                            limit=BATCH,
                        )
                except BaseException:
                    self._unsure = self._unsure or unsure
                    raise
            if not events:
                return
            full = read and len(events) >= BATCH
            prepare = self._feeds.prepare
            if prepare is not None:
                try:
                    await prepare(events)
                except Exception:
                    logger.exception("preparing events of feed %s failed", self.conversation_id)
            self.window.extend(events)
            self.loaded_through = events[-1].seq
            changed, self._changed = self._changed, asyncio.Event()
            changed.set()
            for watcher in list(self.watchers):
                try:
                    watcher(events)
                except Exception:
                    logger.exception("feed watcher failed")


def _retrieved(task: asyncio.Task[None]) -> None:
    """A failed start is re-raised to the listeners waiting on it, if any are left."""
    if not task.cancelled():
        task.exception()


class Feeds:
    """The feeds of this process, shared by every subscription that needs them."""

    def __init__(
        self,
        broker: Broker,
        short_session: Callable[[], AbstractAsyncContextManager[AsyncSession]],
        *,
        resync_seconds: float = 3.0,
        prepare: Callable[[list[SharedEvent]], Awaitable[None]] | None = None,
    ) -> None:
        self.broker = broker
        self.short_session = short_session
        # Awaited with each batch of new events before any listener sees them
        # (resolvers.live.sharing renders them for the listeners' shapes).
        self.prepare = prepare
        self.resync_seconds = resync_seconds
        self._feeds: dict[int, Feed] = {}
        self._lock = asyncio.Lock()
        self._resync_task: asyncio.Task[None] | None = None
        self._remove_reconnect: Callable[[], None] | None = None

    async def start(self) -> None:
        self._remove_reconnect = self.broker.on_reconnect(self._catch_up_all)
        self._resync_task = asyncio.create_task(self._resync(), name="feeds resync")

    async def stop(self) -> None:
        if self._remove_reconnect is not None:
            self._remove_reconnect()
        if self._resync_task is not None:
            self._resync_task.cancel()
            await asyncio.gather(self._resync_task, return_exceptions=True)
        for feed in list(self._feeds.values()):
            await feed.stop()

    def follow(self, conversation_id: int) -> Following:
        """The conversation's feed, subscribed to the broker, while inside (async with)."""
        return Following(self, conversation_id)

    async def _join(self, conversation_id: int) -> Feed:
        async with self._lock:
            feed = self._feeds.get(conversation_id)
            if feed is None:
                feed = self._feeds[conversation_id] = Feed(self, conversation_id)
                # Started outside the lock (following other conversations
                # meanwhile must not wait for this one's broker subscription
                # and first read), in a task: the listener that began it may
                # leave mid-start without failing the others waiting.
                feed.starting = asyncio.create_task(
                    feed.start(),
                    name=f"feed {conversation_id} start",
                    context=contextvars.Context(),
                )
                feed.starting.add_done_callback(_retrieved)
            feed.listeners += 1
            starting = feed.starting
        try:
            if starting is not None:
                try:
                    await asyncio.shield(starting)
                except asyncio.CancelledError:
                    if starting.cancelled():  # stopped under us: the feed is gone
                        raise RuntimeError(f"feed {conversation_id} stopped") from None
                    raise
                except Exception as error:
                    raise RuntimeError(f"feed {conversation_id} failed") from error
        except BaseException:
            await self._leave(feed)
            raise
        return feed

    async def _leave(self, feed: Feed) -> None:
        async with self._lock:
            feed.listeners -= 1
            if feed.listeners == 0 and self._feeds.get(feed.conversation_id) is feed:
                del self._feeds[feed.conversation_id]
                await feed.stop()

    def offer(self, events: Sequence[SharedEvent]) -> None:
        """Events just committed in this process, for the feeds that follow them."""
        for event in events:
            feed = self._feeds.get(event.conversation_id)
            if feed is not None:
                feed.offer(event)

    def followed(self) -> dict[int, Feed]:
        """The feeds this process keeps now, by conversation id."""
        return dict(self._feeds)

    def _catch_up_all(self) -> None:
        for feed in list(self._feeds.values()):
            feed.catch_up()

    async def _resync(self) -> None:
        """Now and then, compare every feed with the database: announcements can be lost."""
        while True:
            await asyncio.sleep(self.resync_seconds)
            feeds = dict(self._feeds)
            if not feeds:
                continue
            try:
                async with self.short_session() as session:
                    seqs = await conversations.last_seqs(session, conversation_ids=list(feeds))
            except Exception:
                logger.exception("feed resync failed")
                continue
            for conversation_id, last_seq in seqs.items():
                feeds[conversation_id].announce(last_seq)


class Following:
    """One listener's hold on a feed (``Feeds.follow``).

    A class rather than a generator-based context manager: every live
    subscription holds one for its whole life, and this is a fifth of the size.
    """

    __slots__ = ("_conversation_id", "_feed", "_feeds")

    def __init__(self, feeds: Feeds, conversation_id: int) -> None:
        self._feeds = feeds
        self._conversation_id = conversation_id
        self._feed: Feed | None = None

    async def __aenter__(self) -> Feed:
        self._feed = await self._feeds._join(self._conversation_id)  # noqa: SLF001 (its own helper)
        return self._feed

    async def __aexit__(self, *_exc: object) -> None:
        feed, self._feed = self._feed, None
        if feed is not None:
            # Shielded: a listener leaves because its stream was cancelled, and
            # may be cancelled again while it waits for the lock or for the
            # feed to stop. A leave cut short there kept the feed, its task,
            # its broker subscription and its window of events for ever.
            await asyncio.shield(self._feeds._leave(feed))  # noqa: SLF001 (its own helper)
