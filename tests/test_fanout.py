"""Fan-out inside one process, driven with ``schema.subscribe``: cost and broker faults."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import resolvers.live.feeds as feeds_module
from db import conversations as db_conversations
from resolvers.context import Context
from resolvers.live.broker import Broker
from resolvers.live.feeds import Feed
from resolvers.live.publisher import Publisher
from resolvers.live.snapshots import load_events
from schema.ids import decode_global_id
from schema.schema import schema
from tests.client import User, sign_up
from tests.inprocess import InProcess, in_process
from tests.operations import EVENTS, create_group, send

QUIET = {"live_resync_seconds": 3600.0}  # only announcements move the feeds here


async def receive(
    app: InProcess, user: User, group: str, after: int, count: int, started: asyncio.Event
) -> list[dict[str, Any]]:
    """Subscribe as a WebSocket operation would (in a task of its own) and take count events."""
    context = Context(services=app.services, access_token=user.token)
    stream = await schema.subscribe(
        EVENTS, variable_values={"id": group, "after": after}, context_value=context
    )
    assert not hasattr(stream, "errors"), stream
    events: list[dict[str, Any]] = []
    async with aclosing(stream) as results:
        started.set()
        async for result in results:
            assert not result.errors, result.errors
            assert result.data is not None
            events.append(result.data["conversationEvents"])
            if len(events) == count:
                break
    return events


async def _group(app: InProcess, members: int) -> tuple[User, list[User], str, int]:
    owner = await sign_up(app.client)
    others = [await sign_up(app.client) for _ in range(members)]
    group, last_seq = await create_group(owner, *others, title="fan")
    return owner, others, group, last_seq


async def _until(condition: Callable[[], bool]) -> None:
    """Poll internal state the test has no event for (the server's own bookkeeping)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110 (there is no event to wait on)
            await asyncio.sleep(0.01)


async def _cost_of_one_event(app: InProcess, listeners: int) -> int:
    owner, others, group, start = await _group(app, listeners)
    ready = [asyncio.Event() for _ in others]
    tasks = [
        asyncio.create_task(receive(app, user, group, start, 2, event))
        for user, event in zip(others, ready, strict=True)
    ]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in ready)), 10)
    feeds, key = app.services.feeds, decode_global_id(group)[1]

    def feed() -> Feed | None:
        return feeds.followed().get(key)

    await _until(lambda: (f := feed()) is not None and f.listeners == listeners)  # all following
    # warm up: every listener takes one event first, so all are live and idle
    await send(owner, group, "warm-up")
    await _until(lambda: (f := feed()) is not None and f.loaded_through > start)
    await asyncio.sleep(0.2)
    app.counter.statements.clear()
    await send(owner, group, "counted")
    results = await asyncio.wait_for(asyncio.gather(*tasks), 20)
    assert all(r[-1]["message"]["body"] == "counted" for r in results)
    return len(app.counter.statements)


async def test_one_event_costs_the_same_for_one_or_twenty_listeners(tmp_path: Path) -> None:
    async with in_process(tmp_path, **QUIET) as app:
        # The least of two measurements: a stray statement from bookkeeping that
        # happens to fall in the window must not count as per-listener cost.
        one = min([await _cost_of_one_event(app, 1) for _ in range(2)])
        twenty = min([await _cost_of_one_event(app, 20) for _ in range(2)])
    # the send itself plus one load of the event for the whole process
    assert twenty == one, (one, twenty)


class Chaos:
    """A broker that drops every third announcement and delays others past later ones."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.count = 0
        self.held: list[tuple[str, str]] = []
        self.reliable = False

    async def publish(self, channel: str, message: str) -> None:
        if self.reliable or not channel.startswith("parley.conversation."):
            await self.broker.publish(channel, message)
            return
        self.count += 1
        if self.count % 3 == 0:
            return  # lost
        if self.count % 3 == 1:
            self.held.append((channel, message))  # late
            return
        await self.broker.publish(channel, message)
        for held in self.held:  # arrives after a later one
            await self.broker.publish(*held)
        self.held.clear()


@pytest.mark.parametrize("offers", [False, True], ids=["read back", "offered"])
async def test_dropped_and_reordered_announcements_leave_no_gap(
    tmp_path: Path, offers: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(tmp_path, **QUIET) as app:
        owner, (bob,), group, start = await _group(app, 1)
        chaos = Chaos(app.services.broker)
        # Requests from now on publish through the chaotic broker; without
        # offers, as if they were made in another process.
        app.app.state.services = replace(app.services, publisher=Publisher(chaos))
        if not offers:
            monkeypatch.setattr(app.services.feeds, "offer", lambda _events: None)
        started = asyncio.Event()
        listening = asyncio.create_task(receive(app, bob, group, start, 31, started))
        await started.wait()
        for n in range(30):
            await send(owner, group, f"m{n}")
        chaos.reliable = True
        await send(owner, group, "last")
        events = await asyncio.wait_for(listening, 20)
    assert [e["seq"] for e in events] == list(range(start + 1, start + 32))
    assert [e["message"]["body"] for e in events] == [f"m{n}" for n in range(30)] + ["last"]


async def test_a_listener_leaving_while_the_feed_starts_fails_no_other(tmp_path: Path) -> None:
    async with in_process(tmp_path, **QUIET) as app:
        ann = await sign_up(app.client)
        group, _ = await create_group(ann)
        feeds, key = app.services.feeds, decode_global_id(group)[1]
        entered = asyncio.Event()

        async def follow(hold: bool) -> int:
            async with feeds.follow(key) as feed:
                if hold:
                    entered.set()
                    await asyncio.sleep(3600)
                return feed.loaded_through

        first = asyncio.create_task(follow(hold=True))
        await asyncio.sleep(0)  # the first listener has begun the feed's start
        second = asyncio.create_task(follow(hold=False))
        await asyncio.sleep(0)  # the second waits for that start
        first.cancel()  # ... and the first leaves before it is done
        assert await asyncio.wait_for(second, 10) >= 0  # was RuntimeError: feed failed
        with contextlib.suppress(asyncio.CancelledError):
            await first
        assert first.cancelled() and not entered.is_set()  # it left before the start ended
        assert key not in feeds.followed()  # the last listener gone, the feed stopped


class Silent:
    """A broker that loses every announcement of a conversation's timeline."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def publish(self, channel: str, message: str) -> None:
        if not channel.startswith("parley.conversation."):
            await self.broker.publish(channel, message)


def sends_from_elsewhere_unannounced(app: InProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests from now on send as if from another process whose announcements are lost."""
    silent = Publisher(Silent(app.services.broker))
    app.app.state.services = replace(app.services, publisher=silent)
    monkeypatch.setattr(app.services.feeds, "offer", lambda _events: None)


async def test_a_catch_up_reads_what_no_announcement_told_of(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(tmp_path, **QUIET) as app:
        owner, _, group, start = await _group(app, 1)
        # sends made as if in another process, whose announcements are all lost
        sends_from_elsewhere_unannounced(app, monkeypatch)
        async with app.services.feeds.follow(decode_global_id(group)[1]) as feed:
            for n in range(3):
                await send(owner, group, f"m{n}")
            await asyncio.sleep(0.2)
            assert feed.loaded_through == start
            # when the broker reconnects (what it calls on the feeds)
            feed.catch_up()
            # then the feed reads them all the same
            await asyncio.wait_for(feed.wait_beyond(start + 2), 10)
        assert feed.loaded_through == start + 3


async def test_a_catch_up_reads_on_past_a_full_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feeds_module, "BATCH", 2)
    async with in_process(tmp_path, **QUIET) as app:
        owner, _, group, start = await _group(app, 1)
        sends_from_elsewhere_unannounced(app, monkeypatch)
        async with app.services.feeds.follow(decode_global_id(group)[1]) as feed:
            for n in range(5):
                await send(owner, group, f"m{n}")
            # when a catch-up finds more than one batch
            feed.catch_up()
            # then it reads them all
            await asyncio.wait_for(feed.wait_beyond(start + 4), 10)


async def test_a_catch_up_asked_for_with_an_offer_pending_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(tmp_path, **QUIET) as app:
        owner, _, group, start = await _group(app, 1)
        sends_from_elsewhere_unannounced(app, monkeypatch)
        conversation_id = decode_global_id(group)[1]
        async with app.services.feeds.follow(conversation_id) as feed:
            await send(owner, group, "made here, offered")
            await send(owner, group, "made elsewhere, its announcement lost")
            async with app.services.short_session() as session:
                (first,) = await load_events(
                    session, conversation_id=conversation_id, after_seq=start, limit=1
                )
            # when the offer and a broker reconnect come in the same tick
            feed.offer(first)
            feed.catch_up()
            # then the feed takes the one and reads the other
            await asyncio.wait_for(feed.wait_beyond(start + 1), 10)


async def test_an_announcement_while_the_feed_starts_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with in_process(tmp_path, **QUIET) as app:
        owner, _, group, start = await _group(app, 1)
        conversation_id = decode_global_id(group)[1]
        sends_from_elsewhere_unannounced(app, monkeypatch)
        await send(owner, group, "committed by another node")
        read = db_conversations.last_seqs

        async def before_the_commit(session: Any, *, conversation_ids: list[int]) -> dict[int, int]:
            # the start's read saw the timeline before that commit, and the
            # commit's announcement was handled before the read's answer came
            await read(session, conversation_ids=conversation_ids)
            app.services.feeds.followed()[conversation_id].announce(start + 1)
            return {conversation_id: start}

        monkeypatch.setattr(db_conversations, "last_seqs", before_the_commit)
        async with app.services.feeds.follow(conversation_id) as feed:
            monkeypatch.setattr(db_conversations, "last_seqs", read)
            await asyncio.wait_for(feed.wait_beyond(start), 10)


async def test_a_listener_cancelled_again_while_leaving_still_stops_the_feed(
    tmp_path: Path,
) -> None:
    async with in_process(tmp_path, **QUIET) as app:
        ann = await sign_up(app.client)
        group, _ = await create_group(ann)
        feeds, key = app.services.feeds, decode_global_id(group)[1]
        entered = asyncio.Event()

        async def listen() -> None:
            async with feeds.follow(key):
                entered.set()
                await asyncio.sleep(3600)

        listening = asyncio.create_task(listen())
        await entered.wait()
        feed = weakref.ref(feeds.followed()[key])
        # when its stream is cancelled, and cancelled again while it leaves
        # (the feed's stop is under way: a socket closing as its stream ends)
        listening.cancel()
        await asyncio.sleep(0)
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening
        # then the feed is stopped all the same: nothing, its broker
        # subscription included, keeps it (and its window of events)
        await asyncio.sleep(0.2)
        gc.collect()
        assert key not in feeds.followed()
        assert feed() is None
