"""The timeline streams: conversationEvents and viewerEvents.

Long-lived streams hold no database session.

Each stream checks access once at the start with the operation's session,
then closes it; every later read uses a short session of its own. The
streams yield what happened (``SharedEvent``s, and the viewer's own news);
``sharing.deliver`` turns each into a payload, once for every subscriber
where it can.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime

from db import conversations as conversation_queries
from db import messages as message_queries
from db.models import ConversationKind, ConversationRow, EventKind, MembershipRow
from resolvers.access import StreamAccess, readable
from resolvers.context import Context
from resolvers.live.common import Inbox, go_live, read_into, too_slow
from resolvers.live.feeds import Feed
from resolvers.live.publisher import Notice, UserNotice, read_user_notice, user_channel
from resolvers.live.snapshots import SharedEvent, load_events
from schema.errors import BadUserInput

REPLAY_PAGE = 100
VIEWER_BUFFER = 1000
JOIN_CATCH_UP = 50  # messages read back for a conversation joined a moment ago


async def conversation_events(
    ctx: Context,
    *,
    conversation_id: int,
    after_seq: int | None,
    kind: ConversationKind | None = None,
) -> AsyncIterator[SharedEvent]:
    viewer_id = (await ctx.require_viewer()).id
    access = await readable(ctx, conversation_id, kind=kind)
    last_seq = access.conversation.last_seq
    if after_seq is not None and not 0 <= after_seq <= last_seq:
        raise BadUserInput(f"afterSeq must be between 0 and {last_seq}.", field="afterSeq")
    stream_access = StreamAccess(viewer_id, member=access.membership is not None)
    del access  # rows the stream would otherwise hold for its whole life
    await go_live(ctx)
    async with ctx.services.feeds.follow(conversation_id) as feed:
        cursor = last_seq if after_seq is None else after_seq
        live = False
        while True:
            batch = feed.after(cursor)
            if batch is None:
                if live:
                    raise too_slow(cursor)
                batch = await _replay(ctx, conversation_id, cursor)
            elif not batch:
                live = True
                await feed.wait_beyond(cursor)
                continue
            for event in batch:
                yield event
                cursor = event.seq
                lost = stream_access.lost_by(event)
                if lost is not None:
                    # A replay passes old removals too: only a removal that
                    # still stands ends the stream (the viewer may have been
                    # added back since).
                    if not await _is_member(ctx, conversation_id, viewer_id):
                        raise lost
                    stream_access.rejoined()


async def _replay(ctx: Context, conversation_id: int, cursor: int) -> list[SharedEvent]:
    async with ctx.services.short_session() as session:
        return await load_events(
            session, conversation_id=conversation_id, after_seq=cursor, limit=REPLAY_PAGE
        )


async def _is_member(ctx: Context, conversation_id: int, user_id: int) -> bool:
    async with ctx.services.short_session() as session:
        membership = await conversation_queries.get_membership(
            session, conversation_id=conversation_id, user_id=user_id
        )
    return membership is not None


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


@dataclass
class _Followed:
    """A conversation viewerEvents follows: its feed subscription, whether the
    viewer is a member at the point of the timeline the stream has reached, and
    the seq after which its messages are the viewer's news."""

    subscription: AsyncExitStack
    access: StreamAccess
    since: int


async def viewer_events(ctx: Context) -> AsyncIterator[ViewerItem]:
    viewer_id = (await ctx.require_viewer()).id
    inbox: Inbox[SharedEvent | UserNotice] = Inbox(VIEWER_BUFFER)
    followed: dict[int, _Followed] = {}

    def on_feed(events: list[SharedEvent]) -> None:
        for event in events:
            # Messages, and the viewer's own removals and additions: the
            # timeline says in seq order when it stops and starts being a
            # member, even if the broker loses the notices on its own channel.
            if event.conversation_id in followed and (
                event.kind == EventKind.MESSAGE_ADDED
                or viewer_id in event.user_ids("removed")
                or viewer_id in event.user_ids("added")
            ):
                inbox.put(event)

    async def follow(conversation_id: int, since: int = 0) -> int | None:
        """Follow the conversation; the seq from which its feed reports (None if followed)."""
        if conversation_id in followed:
            return None
        stack = AsyncExitStack()
        feed: Feed = await stack.enter_async_context(ctx.services.feeds.follow(conversation_id))
        feed.watchers.add(on_feed)
        stack.callback(feed.watchers.discard, on_feed)
        followed[conversation_id] = _Followed(stack, StreamAccess(viewer_id, member=True), since)
        return feed.loaded_through

    async def unfollow(conversation_id: int) -> bool:
        entry = followed.pop(conversation_id, None)
        if entry is not None:
            await entry.subscription.aclose()
        return entry is not None

    try:
        # Listen first, then read the list: a join in between is not missed.
        async with ctx.services.broker.listen(
            user_channel(viewer_id), read_into(inbox, read_user_notice)
        ):
            async with ctx.db.read() as session:
                conversation_ids = await conversation_queries.conversation_ids_of_user(
                    session, user_id=viewer_id
                )
            await go_live(ctx)
            for conversation_id in conversation_ids:
                await follow(conversation_id)
            while True:
                item = await inbox.get()
                converted: list[ViewerItem] = []
                if isinstance(item, UserNotice):
                    entry = followed.get(item.conversation_id)
                    if entry is None or entry.access.member:
                        converted = await _on_notice(ctx, viewer_id, item, follow, unfollow)
                    # else the feed, which says it in order, tells of the re-join
                elif (entry := followed.get(item.conversation_id)) is None or (
                    item.seq <= entry.since
                ):
                    continue  # queued before a removal, or from before a join
                elif item.kind == EventKind.MESSAGE_ADDED:
                    if entry.access.member:
                        converted = [item]
                else:
                    was_member = entry.access.member
                    lost = entry.access.lost_by(item)
                    if lost is not None and was_member:
                        converted = [Left(conversation=item.conversation, at=item.at)]
                        if not await _is_member(ctx, item.conversation_id, viewer_id):
                            await unfollow(item.conversation_id)
                        # else it was added back since: the feed will say when
                    elif entry.access.member and not was_member:
                        converted = [Joined(conversation=item.conversation, at=item.at)]
                for one in converted:
                    yield one
    finally:
        for conversation_id in list(followed):
            await unfollow(conversation_id)


async def _on_notice(
    ctx: Context,
    viewer_id: int,
    notice: UserNotice,
    follow: Callable[[int, int], Awaitable[int | None]],
    unfollow: Callable[[int], Awaitable[bool]],
) -> list[ViewerItem]:
    kind, conversation_id = notice.notice, notice.conversation_id
    now = datetime.now(UTC)
    # The session is closed before following a feed, which opens its own:
    # on SQLite there is one connection, and holding it there would deadlock.
    async with ctx.services.short_session() as session:
        membership = await conversation_queries.get_membership(
            session, conversation_id=conversation_id, user_id=viewer_id
        )
        found = await conversation_queries.get_conversations(session, ids=[conversation_id])
        unread = (
            await message_queries.unread_counts(
                session, user_id=viewer_id, conversation_ids=[conversation_id]
            )
            if kind == Notice.READ_MARKER_MOVED and membership is not None
            else {}
        )
    if not found:
        return []
    conversation = found[0]
    if kind == Notice.CONVERSATION_JOINED and membership is not None:
        # What came before the join is not the viewer's news.
        reports_from = await follow(conversation_id, membership.last_read_seq)
        joined: list[ViewerItem] = [Joined(conversation=conversation, at=now)]
        if reports_from is None:
            return joined
        # Messages sent between the join and this notice reaching us came
        # before the feed was followed: read them, then the feed goes on.
        async with ctx.services.short_session() as session:
            missed = await load_events(
                session,
                conversation_id=conversation_id,
                after_seq=membership.last_read_seq,
                limit=JOIN_CATCH_UP,
            )
        return joined + [
            event
            for event in missed
            if event.kind == EventKind.MESSAGE_ADDED and event.seq <= reports_from
        ]
    if kind == Notice.CONVERSATION_LEFT and membership is None and await unfollow(conversation_id):
        return [Left(conversation=conversation, at=now)]
    if kind == Notice.READ_MARKER_MOVED and membership is not None:
        return [
            ReadMarker(
                conversation=conversation,
                membership=membership,
                unread_count=unread.get(conversation_id, 0),
                at=now,
            )
        ]
    return []
