"""Signals nobody replays: typing, read receipts, presence. Lost if nobody listens, by design."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from db import users as user_queries
from db.models import EventKind, UserRow
from resolvers import validation
from resolvers.context import Context
from resolvers.conversations import readable
from resolvers.live.common import Inbox, go_live, json_into, load_user
from resolvers.live.publisher import presence_channel, receipts_channel, typing_channel
from resolvers.live.snapshots import SharedEvent
from schema.errors import BadUserInput, Forbidden

TYPING_TTL_SECONDS = 5.0
PRESENCE_RECHECK_SECONDS = 5.0


async def set_typing(ctx: Context, *, conversation_id: int, typing: bool) -> bool:
    viewer = await ctx.require_viewer()
    access = await readable(ctx, conversation_id)
    if access.membership is None:  # previewing a public group: as for any write
        raise Forbidden("Join this group before you write to it.")
    await ctx.services.publisher.typing(
        conversation_id=conversation_id, user_id=viewer.id, typing=typing
    )
    return True


_REMOVED = object()


@asynccontextmanager
async def _until_removed(
    ctx: Context, conversation_id: int, viewer_id: int, inbox: Inbox, *, member: bool
) -> AsyncIterator[None]:
    """Put a marker in the inbox once the timeline says the viewer may no longer read:
    removed as a member, or, previewing a public group, the group went private.

    The conversation's feed is shared by the whole process, so this costs no
    more than one more watcher on it.
    """
    state = {"member": member}

    def on_events(events: list[SharedEvent]) -> None:
        for event in events:
            if event.removes(viewer_id):
                inbox.put(_REMOVED)
            elif event.kind == EventKind.MEMBERS_CHANGED:
                if viewer_id in event.user_ids("added"):
                    state["member"] = True
            elif event.kind == EventKind.CONVERSATION_UPDATED and not state["member"]:
                if not event.conversation.is_public:
                    inbox.put(_REMOVED)

    async with ctx.services.feeds.follow(conversation_id) as feed:
        feed.watchers.add(on_events)
        try:
            yield
        finally:
            feed.watchers.discard(on_events)


def _or_forbidden(item: Any) -> Any:
    if item is _REMOVED:
        raise Forbidden("You are no longer a member of this conversation.")
    return item


@dataclass(frozen=True, slots=True)
class Typing:
    conversation_id: int
    user: UserRow
    typing: bool


async def typing(ctx: Context, *, conversation_id: int) -> AsyncIterator[Typing]:
    viewer = await ctx.require_viewer()
    member = (await readable(ctx, conversation_id)).membership is not None
    await go_live(ctx)
    inbox = Inbox(256)
    loop = asyncio.get_running_loop()
    timers: dict[int, asyncio.TimerHandle] = {}

    def stopped(user_id: int) -> None:
        if timers.pop(user_id, None) is not None:
            inbox.put((user_id, False))

    def on_message(message: str) -> None:
        try:
            envelope = json.loads(message)
            user_id, is_typing = int(envelope["user_id"]), bool(envelope["typing"])
        except (ValueError, KeyError, TypeError):
            return
        if user_id == viewer.id:
            return
        timer = timers.pop(user_id, None)
        if timer is not None:
            timer.cancel()
        if is_typing:
            # Typing stops by itself when no refresh comes within the TTL.
            timers[user_id] = loop.call_later(TYPING_TTL_SECONDS, stopped, user_id)
            if timer is None:
                inbox.put((user_id, True))
        elif timer is not None:
            inbox.put((user_id, False))

    try:
        async with (
            ctx.services.broker.listen(typing_channel(conversation_id), on_message),
            _until_removed(ctx, conversation_id, viewer.id, inbox, member=member),
        ):
            while True:
                user_id, is_typing = _or_forbidden(await inbox.get())
                user = await load_user(ctx, user_id)
                if user is not None:
                    yield Typing(conversation_id=conversation_id, user=user, typing=is_typing)
    finally:
        for timer in timers.values():
            timer.cancel()


@dataclass(frozen=True, slots=True)
class Receipt:
    conversation_id: int
    user: UserRow
    last_read_seq: int
    at: datetime


async def read_receipts(ctx: Context, *, conversation_id: int) -> AsyncIterator[Receipt]:
    viewer = await ctx.require_viewer()
    member = (await readable(ctx, conversation_id)).membership is not None
    await go_live(ctx)
    inbox = Inbox(1000)
    async with (
        ctx.services.broker.listen(receipts_channel(conversation_id), json_into(inbox)),
        _until_removed(ctx, conversation_id, viewer.id, inbox, member=member),
    ):
        while True:
            envelope = _or_forbidden(await inbox.get())
            try:
                user_id = int(envelope["user_id"])
                seq, at = int(envelope["last_read_seq"]), datetime.fromisoformat(envelope["at"])
            except (ValueError, KeyError, TypeError):
                continue
            if user_id == viewer.id:
                continue
            user = await load_user(ctx, user_id)
            if user is not None:
                yield Receipt(conversation_id=conversation_id, user=user, last_read_seq=seq, at=at)


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
                async with ctx.services.sessionmaker() as session:
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
