"""Signals nobody replays: typing, read receipts, presence. Lost if nobody listens, by design."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from db import users as user_queries
from db.models import ConversationKind, ConversationRow, UserRow
from resolvers import validation
from resolvers.access import StreamAccess, readable, still_readable
from resolvers.context import Context
from resolvers.live.common import Inbox, go_live, read_into, user_row
from resolvers.live.publisher import (
    ReadReceiptSignal,
    presence_channel,
    read_receipt_signal,
    read_typing,
    receipts_channel,
    typing_channel,
    typing_signal,
)
from resolvers.live.snapshots import SharedEvent
from schema.errors import BadUserInput, Forbidden

TYPING_TTL_SECONDS = 5.0
PRESENCE_RECHECK_SECONDS = 5.0

T = TypeVar("T")


async def set_typing(
    ctx: Context, *, conversation_id: int, typing: bool, kind: ConversationKind | None = None
) -> bool:
    viewer = await ctx.require_viewer()
    access = await readable(ctx, conversation_id, kind=kind)
    if access.membership is None:  # previewing a public group: as for any write
        raise Forbidden("Join this group before you write to it.")
    await ctx.services.publisher.publish(
        typing_signal(conversation_id=conversation_id, user_id=viewer.id, typing=typing)
    )
    return True


@asynccontextmanager
async def _until_access_lost(
    ctx: Context, conversation_id: int, access: StreamAccess, inbox: Inbox[T | Forbidden]
) -> AsyncIterator[None]:
    """Put the error ending the stream into the inbox once the timeline says so.

    The conversation's feed is shared by the whole process, so this costs no
    more than one more watcher on it.
    """

    def on_events(events: list[SharedEvent]) -> None:
        for event in events:
            lost = access.lost_by(event)
            if lost is not None:
                inbox.put(lost)

    async with ctx.services.feeds.follow(conversation_id) as feed:
        feed.watchers.add(on_events)
        try:
            # The feed reports what comes after it started; what happened
            # between the stream's access check and then is read here, once.
            lost = await still_readable(ctx, conversation_id, access)
            if lost is not None:
                inbox.put(lost)
            yield
        finally:
            feed.watchers.discard(on_events)


def _or_end(item: T | Forbidden) -> T:
    if isinstance(item, Forbidden):
        raise item
    return item


async def _open(
    ctx: Context, conversation_id: int, kind: ConversationKind | None
) -> tuple[UserRow, ConversationRow, StreamAccess]:
    viewer = await ctx.require_viewer()
    access = await readable(ctx, conversation_id, kind=kind)
    await go_live(ctx)
    stream_access = StreamAccess(viewer.id, member=access.membership is not None)
    return viewer, access.conversation, stream_access


@dataclass(frozen=True, slots=True)
class Typing:
    conversation: ConversationRow
    user: UserRow
    typing: bool


async def typing(
    ctx: Context, *, conversation_id: int, kind: ConversationKind | None = None
) -> AsyncIterator[Typing]:
    viewer, conversation, access = await _open(ctx, conversation_id, kind)
    inbox: Inbox[tuple[int, bool] | Forbidden] = Inbox(256)
    loop = asyncio.get_running_loop()
    timers: dict[int, asyncio.TimerHandle] = {}

    def stopped(user_id: int) -> None:
        if timers.pop(user_id, None) is not None:
            inbox.put((user_id, False))

    def on_message(message: str) -> None:
        signal = read_typing(message)
        if signal is None or signal.user_id == viewer.id:
            return
        timer = timers.pop(signal.user_id, None)
        if timer is not None:
            timer.cancel()
        if signal.typing:
            # Typing stops by itself when no refresh comes within the TTL.
            timers[signal.user_id] = loop.call_later(TYPING_TTL_SECONDS, stopped, signal.user_id)
            if timer is None:
                inbox.put((signal.user_id, True))
        elif timer is not None:
            inbox.put((signal.user_id, False))

    try:
        async with (
            ctx.services.broker.listen(typing_channel(conversation_id), on_message),
            _until_access_lost(ctx, conversation_id, access, inbox),
        ):
            while True:
                user_id, is_typing = _or_end(await inbox.get())
                user = await user_row(ctx, user_id)
                if user is not None:
                    yield Typing(conversation=conversation, user=user, typing=is_typing)
    finally:
        for timer in timers.values():
            timer.cancel()


@dataclass(frozen=True, slots=True)
class Receipt:
    conversation: ConversationRow
    user: UserRow
    last_read_seq: int
    at: datetime


async def read_receipts(
    ctx: Context, *, conversation_id: int, kind: ConversationKind | None = None
) -> AsyncIterator[Receipt]:
    viewer, conversation, access = await _open(ctx, conversation_id, kind)
    inbox: Inbox[ReadReceiptSignal | Forbidden] = Inbox(1000)
    async with (
        ctx.services.broker.listen(
            receipts_channel(conversation_id), read_into(inbox, read_receipt_signal)
        ),
        _until_access_lost(ctx, conversation_id, access, inbox),
    ):
        while True:
            signal = _or_end(await inbox.get())
            if signal.user_id == viewer.id:
                continue
            user = await user_row(ctx, signal.user_id)
            if user is not None:
                yield Receipt(
                    conversation=conversation,
                    user=user,
                    last_read_seq=signal.last_read_seq,
                    at=signal.at,
                )


@dataclass(frozen=True, slots=True)
class Presence:
    user: UserRow
    online: bool


async def presence(ctx: Context, *, user_ids: list[int]) -> AsyncIterator[Presence]:
    await ctx.require_viewer()
    if len(user_ids) > validation.MAX_IDS:
        raise BadUserInput(f"At most {validation.MAX_IDS} users at once.", field="userIds")
    wanted = list(dict.fromkeys(user_ids))
    await go_live(ctx)
    store = ctx.services.presence
    changed = asyncio.Event()
    known: dict[int, bool] = {}

    def on_message(_message: str) -> None:
        changed.set()

    async with AsyncExitStack() as stack:
        for user_id in wanted:
            await stack.enter_async_context(
                ctx.services.broker.listen(presence_channel(user_id), on_message)
            )
        while True:
            # The first round reports everyone; later rounds only changes.
            # A node that dies announces nothing, hence the periodic look.
            states = await store.online(wanted)
            moved = [u for u in wanted if known.get(u) != states.get(u, False)]
            known.update({u: states.get(u, False) for u in wanted})
            if moved:
                async with ctx.services.short_session() as session:
                    rows = {u.id: u for u in await user_queries.get_users(session, ids=moved)}
                for user_id in moved:
                    if user_id in rows:
                        ctx.scope.fresh_loaders()
                        yield Presence(user=rows[user_id], online=known[user_id])
            changed.clear()
            try:
                async with asyncio.timeout(PRESENCE_RECHECK_SECONDS):
                    await changed.wait()
            except TimeoutError:
                pass
