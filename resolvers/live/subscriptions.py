"""What each subscription streams. Long-lived streams hold no database session.

Each stream checks access once at the start with the operation's session,
then closes it; every later read uses a short session of its own, and the
session that field resolvers open for one event is closed before waiting
for the next.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from db import conversations as conversation_queries
from db import messages as message_queries
from db import users as user_queries
from db.models import ConversationRow, EventKind, MembershipRow, UserRow
from resolvers import validation
from resolvers.context import Context
from resolvers.conversations import readable
from resolvers.live.feeds import Feed
from resolvers.live.publisher import (
    presence_channel,
    receipts_channel,
    typing_channel,
    user_channel,
)
from resolvers.live.snapshots import SharedEvent, load_events
from schema.errors import BadUserInput, Forbidden, ParleyError

REPLAY_PAGE = 100
TYPING_TTL_SECONDS = 5.0
PRESENCE_RECHECK_SECONDS = 5.0
VIEWER_BUFFER = 1000


class TooSlow(ParleyError):
    """The listener fell further behind than the server keeps for it."""

    code = "RATE_LIMITED"


def _too_slow(cursor: int | None) -> TooSlow:
    if cursor is None:
        return TooSlow("You fell too far behind; subscribe again.", reason="SLOW_CONSUMER")
    return TooSlow(
        f"You fell too far behind; subscribe again with afterSeq: {cursor}.",
        reason="SLOW_CONSUMER",
        resumeAfterSeq=cursor,
    )


async def _go_live(ctx: Context) -> None:
    """After the opening checks: release the session and keep every later one short."""
    await ctx.db.close()
    ctx.db.keep_short()


def _prime(ctx: Context, event: SharedEvent, viewer_id: int) -> None:
    """Fresh loaders for the event, filled from the rows the feed loaded once for everyone."""
    scope = ctx.scope
    scope.fresh_loaders()
    loaders = scope.loaders
    loaders.conversations.prime(event.conversation_id, event.conversation, force=True)
    for user in event.users.values():
        loaders.users.prime(user.id, user, force=True)
    for message in event.messages.values():
        loaders.messages.prime(message.id, message, force=True)
        loaders.reactions.prime(
            message.id, event.reaction_summaries(message.id, viewer_id), force=True
        )


async def conversation_events(
    ctx: Context, *, conversation_id: int, after_seq: int | None
) -> AsyncIterator[SharedEvent]:
    viewer = await ctx.require_viewer()
    access = await readable(ctx, conversation_id)
    last_seq = access.conversation.last_seq
    if after_seq is not None and not 0 <= after_seq <= last_seq:
        raise BadUserInput(f"afterSeq must be between 0 and {last_seq}.", field="afterSeq")
    member = access.membership is not None
    await _go_live(ctx)
    async with ctx.services.feeds.follow(conversation_id) as feed:
        cursor = last_seq if after_seq is None else after_seq
        live = False
        while True:
            batch = feed.after(cursor)
            if batch is None:
                if live:
                    raise _too_slow(cursor)
                batch = await _replay(ctx, conversation_id, cursor)
            elif not batch:
                live = True
                await feed.wait_beyond(cursor)
                continue
            for event in batch:
                _prime(ctx, event, viewer.id)
                yield event
                cursor = event.seq
                member = await _still_allowed(ctx, event, viewer.id, member)


async def _replay(ctx: Context, conversation_id: int, cursor: int) -> list[SharedEvent]:
    async with ctx.services.sessionmaker() as session:
        return await load_events(
            session, conversation_id=conversation_id, after_seq=cursor, limit=REPLAY_PAGE
        )


async def _still_allowed(ctx: Context, event: SharedEvent, viewer_id: int, member: bool) -> bool:
    """Whether the viewer is (still) a member; FORBIDDEN when it may no longer read."""
    if event.kind == EventKind.MEMBERS_CHANGED:
        if viewer_id in event.user_ids("removed"):
            raise Forbidden("You are no longer a member of this conversation.")
        if viewer_id in event.user_ids("added"):
            return True
    if event.kind == EventKind.CONVERSATION_UPDATED and not member:
        if not event.conversation.is_public:
            raise Forbidden("This group is no longer public.")
    return member


# ------------------------------------------------------------------ viewer


@dataclass(frozen=True, slots=True)
class Joined:
    conversation: ConversationRow
    at: datetime


@dataclass(frozen=True, slots=True)
class Left:
    conversation: ConversationRow
    at: datetime


@dataclass(frozen=True, slots=True)
class ReadMarker:
    conversation: ConversationRow
    membership: MembershipRow
    unread_count: int
    at: datetime


ViewerItem = SharedEvent | Joined | Left | ReadMarker


class _Inbox:
    """A bounded buffer for one listener; overflowing it ends that listener only."""

    def __init__(self, limit: int) -> None:
        self.items: deque[Any] = deque()
        self.limit = limit
        self.overflowed = False
        self._ready = asyncio.Event()

    def put(self, item: Any) -> None:
        if len(self.items) >= self.limit:
            self.overflowed = True
        else:
            self.items.append(item)
        self._ready.set()

    async def get(self) -> Any:
        while not self.items:
            if self.overflowed:
                raise _too_slow(None)
            self._ready.clear()
            await self._ready.wait()
        if self.overflowed:
            raise _too_slow(None)
        return self.items.popleft()


async def viewer_events(ctx: Context) -> AsyncIterator[ViewerItem]:
    viewer = await ctx.require_viewer()
    async with ctx.db.read() as session:
        conversation_ids = await conversation_queries.conversation_ids_of_user(
            session, user_id=viewer.id
        )
    await _go_live(ctx)
    inbox = _Inbox(VIEWER_BUFFER)

    def on_feed(events: list[SharedEvent]) -> None:
        for event in events:
            if event.kind == EventKind.MESSAGE_ADDED:
                inbox.put(event)

    followed: dict[int, AsyncExitStack] = {}

    async def follow(conversation_id: int) -> None:
        if conversation_id in followed:
            return
        stack = AsyncExitStack()
        feed: Feed = await stack.enter_async_context(ctx.services.feeds.follow(conversation_id))
        feed.watchers.add(on_feed)
        stack.callback(feed.watchers.discard, on_feed)
        followed[conversation_id] = stack

    async def unfollow(conversation_id: int) -> None:
        stack = followed.pop(conversation_id, None)
        if stack is not None:
            await stack.aclose()

    try:
        async with ctx.services.broker.listen(user_channel(viewer.id), _json_into(inbox)):
            for conversation_id in conversation_ids:
                await follow(conversation_id)
            while True:
                item = await inbox.get()
                if isinstance(item, SharedEvent):
                    _prime(ctx, item, viewer.id)
                    yield item
                else:
                    converted = await _viewer_envelope(ctx, viewer, item, follow, unfollow)
                    if converted is not None:
                        yield converted
    finally:
        for conversation_id in list(followed):
            await unfollow(conversation_id)


def _json_into(inbox: _Inbox) -> Callable[[str], None]:
    def handler(message: str) -> None:
        try:
            inbox.put(json.loads(message))
        except ValueError:
            pass

    return handler


async def _viewer_envelope(
    ctx: Context,
    viewer: UserRow,
    envelope: dict[str, Any],
    follow: Callable[[int], Any],
    unfollow: Callable[[int], Any],
) -> ViewerItem | None:
    from resolvers.groups import JOINED, LEFT
    from resolvers.messages import READ_MARKER_MOVED

    kind, conversation_id = envelope.get("kind"), int(envelope.get("conversation_id", 0))
    now = datetime.now(UTC)
    # The session is closed before following a feed, which opens its own:
    # on SQLite there is one connection, and holding it there would deadlock.
    async with ctx.services.sessionmaker() as session:
        membership = await conversation_queries.get_membership(
            session, conversation_id=conversation_id, user_id=viewer.id
        )
        found = await conversation_queries.get_conversations(session, ids=[conversation_id])
        unread = (
            await message_queries.unread_counts(
                session, user_id=viewer.id, conversation_ids=[conversation_id]
            )
            if kind == READ_MARKER_MOVED and membership is not None
            else {}
        )
    if not found:
        return None
    conversation = found[0]
    if kind == JOINED and membership is not None:
        await follow(conversation_id)
        return Joined(conversation=conversation, at=now)
    if kind == LEFT and membership is None:
        await unfollow(conversation_id)
        return Left(conversation=conversation, at=now)
    if kind == READ_MARKER_MOVED and membership is not None:
        return ReadMarker(
            conversation=conversation,
            membership=membership,
            unread_count=unread.get(conversation_id, 0),
            at=now,
        )
    return None


# ------------------------------------------------------- ephemeral signals


@dataclass(frozen=True, slots=True)
class Typing:
    conversation_id: int
    user: UserRow
    typing: bool


async def typing(ctx: Context, *, conversation_id: int) -> AsyncIterator[Typing]:
    viewer = await ctx.require_viewer()
    await readable(ctx, conversation_id)
    await _go_live(ctx)
    inbox = _Inbox(256)
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
        async with ctx.services.broker.listen(typing_channel(conversation_id), on_message):
            while True:
                user_id, is_typing = await inbox.get()
                user = await _user(ctx, user_id)
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
    await readable(ctx, conversation_id)
    await _go_live(ctx)
    inbox = _Inbox(1000)
    async with ctx.services.broker.listen(receipts_channel(conversation_id), _json_into(inbox)):
        while True:
            envelope = await inbox.get()
            try:
                user_id = int(envelope["user_id"])
                seq, at = int(envelope["last_read_seq"]), datetime.fromisoformat(envelope["at"])
            except (ValueError, KeyError, TypeError):
                continue
            if user_id == viewer.id:
                continue
            user = await _user(ctx, user_id)
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
    await _go_live(ctx)
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


async def _user(ctx: Context, user_id: int) -> UserRow | None:
    async with ctx.services.sessionmaker() as session:
        found = await user_queries.get_users(session, ids=[user_id])
    return found[0] if found else None
