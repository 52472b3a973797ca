"""Queries on messages and reactions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Select, and_, bindparam, case, delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from db.models import MembershipRow, MessageKind, MessageRow, ReactionRow, inserted

# Built once (see db/conversations.py, "Built once").
_MESSAGES = select(MessageRow).where(col(MessageRow.id).in_(bindparam("ids", expanding=True)))


def _page(*, after: bool, before: bool, newest_first: bool) -> Select[MessageRow]:
    query = select(MessageRow).where(
        col(MessageRow.conversation_id) == bindparam("conversation_id")
    )
    if after:
        query = query.where(col(MessageRow.seq) > bindparam("after_seq"))
    if before:
        query = query.where(col(MessageRow.seq) < bindparam("before_seq"))
    order = col(MessageRow.seq).desc() if newest_first else col(MessageRow.seq).asc()
    return query.order_by(order).limit(bindparam("limit"))


_PAGES = {
    (after, before, newest_first): _page(after=after, before=before, newest_first=newest_first)
    for after in (False, True)
    for before in (False, True)
    for newest_first in (False, True)
}


async def get_messages(session: AsyncSession, *, ids: Sequence[int]) -> list[MessageRow]:
    if not ids:
        return []
    result = await session.execute(_MESSAGES, {"ids": list(ids)})
    return list(result.scalars())


async def reread_message(session: AsyncSession, *, message_id: int) -> MessageRow | None:
    """The message as committed now, replacing any copy the session holds."""
    result = await session.execute(
        select(MessageRow)
        .where(col(MessageRow.id) == message_id)
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def get_message_by_client_id(
    session: AsyncSession, *, conversation_id: int, author_id: int, client_message_id: str
) -> MessageRow | None:
    result = await session.execute(
        select(MessageRow).where(
            col(MessageRow.conversation_id) == conversation_id,
            col(MessageRow.author_id) == author_id,
            col(MessageRow.client_message_id) == client_message_id,
        )
    )
    return result.scalar_one_or_none()


async def insert_message(
    session: AsyncSession,
    *,
    conversation_id: int,
    seq: int,
    kind: MessageKind,
    author_id: int | None,
    body: str,
    now: datetime,
    client_message_id: str | None = None,
    reply_to_id: int | None = None,
) -> MessageRow:
    return await inserted(
        session,
        MessageRow,
        conversation_id=conversation_id,
        seq=seq,
        kind=kind,
        author_id=author_id,
        body=body,
        client_message_id=client_message_id,
        reply_to_id=reply_to_id,
        created_at=now,
    )


async def save_message(session: AsyncSession, *, message: MessageRow) -> MessageRow:
    session.add(message)
    await session.flush()
    return message


async def page_messages(
    session: AsyncSession,
    *,
    conversation_id: int,
    after_seq: int | None = None,
    before_seq: int | None = None,
    limit: int,
    newest_first: bool,
) -> list[MessageRow]:
    """Messages with after_seq < seq < before_seq, in the order asked (keyset on seq)."""
    query = _PAGES[after_seq is not None, before_seq is not None, newest_first]
    parameters: dict[str, int] = {"conversation_id": conversation_id, "limit": limit}
    if after_seq is not None:
        parameters["after_seq"] = after_seq
    if before_seq is not None:
        parameters["before_seq"] = before_seq
    result = await session.execute(query, parameters)
    return list(result.scalars())


async def last_messages(
    session: AsyncSession, *, conversation_ids: Sequence[int]
) -> dict[int, MessageRow]:
    """The newest message of each conversation, in one statement."""
    if not conversation_ids:
        return {}
    newest = (
        select(col(MessageRow.conversation_id), func.max(col(MessageRow.seq)))
        .where(col(MessageRow.conversation_id).in_(conversation_ids))
        .group_by(col(MessageRow.conversation_id))
    )
    result = await session.execute(
        select(MessageRow).where(
            tuple_(col(MessageRow.conversation_id), col(MessageRow.seq)).in_(newest)
        )
    )
    return {row.conversation_id: row for row in result.scalars()}


async def unread_counts(
    session: AsyncSession, *, user_id: int, conversation_ids: Sequence[int]
) -> dict[int, int]:
    """Live text messages by others above the user's read marker, by conversation."""
    if not conversation_ids:
        return {}
    result = await session.execute(
        select(col(MessageRow.conversation_id), func.count(col(MessageRow.id)))
        .join(
            MembershipRow,
            and_(
                col(MembershipRow.conversation_id) == col(MessageRow.conversation_id),
                col(MembershipRow.user_id) == user_id,
            ),
        )
        .where(
            col(MessageRow.conversation_id).in_(conversation_ids),
            col(MessageRow.seq) > col(MembershipRow.last_read_seq),
            col(MessageRow.kind) == MessageKind.TEXT,
            col(MessageRow.deleted_at).is_(None),
            (col(MessageRow.author_id) != user_id) | col(MessageRow.author_id).is_(None),
        )
        .group_by(col(MessageRow.conversation_id))
    )
    return {conversation_id: count for conversation_id, count in result.all()}


# -------------------------------------------------------------------- reactions


@dataclass(frozen=True, slots=True)
class ReactionSummary:
    emoji: str
    count: int
    # None: not known (an event rendered once for every viewer; see
    # resolvers.live.sharing), so asking for it needs the viewer.
    viewer_has_reacted: bool | None


_REACTION_SUMMARIES = (
    select(
        col(ReactionRow.message_id),
        col(ReactionRow.emoji),
        func.count(),
        func.max(case((col(ReactionRow.user_id) == bindparam("viewer_id"), 1), else_=0)),
        func.min(col(ReactionRow.id)),
    )
    .where(col(ReactionRow.message_id).in_(bindparam("message_ids", expanding=True)))
    .group_by(col(ReactionRow.message_id), col(ReactionRow.emoji))
    .order_by(col(ReactionRow.message_id), func.min(col(ReactionRow.id)))
)


async def reaction_summaries(
    session: AsyncSession, *, message_ids: Sequence[int], viewer_id: int | None
) -> dict[int, list[ReactionSummary]]:
    """Reactions grouped by emoji, in the order each emoji was first used.

    Without a viewer, whether "the viewer" reacted is unknown (None), never False.
    """
    if not message_ids:
        return {}
    result = await session.execute(
        _REACTION_SUMMARIES, {"message_ids": list(message_ids), "viewer_id": viewer_id or 0}
    )
    summaries: dict[int, list[ReactionSummary]] = {}
    for message_id, emoji, count, reacted, _first in result.all():
        summaries.setdefault(message_id, []).append(
            ReactionSummary(
                emoji=emoji,
                count=count,
                viewer_has_reacted=None if viewer_id is None else bool(reacted),
            )
        )
    return summaries


async def add_reaction(
    session: AsyncSession, *, message_id: int, user_id: int, emoji: str, now: datetime
) -> bool:
    """Record the reaction; False when the user had already reacted with that emoji.

    INSERT … ON CONFLICT DO NOTHING, so the same tap sent twice at once is
    one reaction, not a unique violation.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    result = await session.execute(
        insert(ReactionRow)
        .values(message_id=message_id, user_id=user_id, emoji=emoji, created_at=now)
        .on_conflict_do_nothing(index_elements=["message_id", "user_id", "emoji"])
    )
    return cast("CursorResult[Any]", result).rowcount == 1


async def remove_reaction(
    session: AsyncSession, *, message_id: int, user_id: int, emoji: str
) -> bool:
    result = await session.execute(
        delete(ReactionRow).where(
            col(ReactionRow.message_id) == message_id,
            col(ReactionRow.user_id) == user_id,
            col(ReactionRow.emoji) == emoji,
        )
    )
    return cast("CursorResult[Any]", result).rowcount > 0


async def clear_reactions(session: AsyncSession, *, message_id: int) -> None:
    await session.execute(delete(ReactionRow).where(col(ReactionRow.message_id) == message_id))


async def search_messages(
    session: AsyncSession,
    *,
    user_id: int,
    text: str,
    conversation_id: int | None,
    before_id: int | None,
    limit: int,
) -> list[MessageRow]:
    """Live text messages containing text (case-insensitive) in the user's conversations.

    Newest first. A substring match for now; ranked full-text search
    (PostgreSQL tsvector, SQLite FTS5) is planned and will keep this signature.
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = (
        select(MessageRow)
        .join(
            MembershipRow,
            and_(
                col(MembershipRow.conversation_id) == col(MessageRow.conversation_id),
                col(MembershipRow.user_id) == user_id,
            ),
        )
        .where(
            col(MessageRow.deleted_at).is_(None),
            col(MessageRow.kind) == MessageKind.TEXT,
            # Both sides through the database's lower(), so that whatever it
            # folds (SQLite: ASCII only) it folds alike: text is found as sent.
            func.lower(col(MessageRow.body)).like(func.lower(f"%{escaped}%"), escape="\\"),
        )
        .order_by(col(MessageRow.id).desc())
        .limit(limit)
    )
    if conversation_id is not None:
        query = query.where(col(MessageRow.conversation_id) == conversation_id)
    if before_id is not None:
        query = query.where(col(MessageRow.id) < before_id)
    result = await session.execute(query)
    return list(result.scalars())


async def reactions_by_user(
    session: AsyncSession, *, message_ids: Sequence[int]
) -> dict[int, list[tuple[str, int]]]:
    """(emoji, user id) pairs per message, oldest first: viewer-independent raw reactions."""
    if not message_ids:
        return {}
    result = await session.execute(
        select(col(ReactionRow.message_id), col(ReactionRow.emoji), col(ReactionRow.user_id))
        .where(col(ReactionRow.message_id).in_(message_ids))
        .order_by(col(ReactionRow.id))
    )
    found: dict[int, list[tuple[str, int]]] = {}
    for message_id, emoji, user_id in result.all():
        found.setdefault(message_id, []).append((emoji, user_id))
    return found
