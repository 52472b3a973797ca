"""Queries on conversations, memberships and the timeline-event log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from db.models import (
    ConversationKind,
    ConversationRow,
    EventKind,
    EventRow,
    MembershipRow,
    Role,
    inserted,
)

# Built once: the statements every operation on a conversation runs are module
# constants with bound parameters (an IN list as an expanding one). Building a
# statement costs about as much as SQLite takes to run it (some 50 us of the
# ~150 us a one-row read costs through SQLAlchemy), and leaves reference
# cycles behind for the cyclic collector; a built one is also compiled once.

_CONVERSATIONS = select(ConversationRow).where(
    col(ConversationRow.id).in_(bindparam("ids", expanding=True))
)
_MEMBERSHIPS_OF_USER = select(MembershipRow).where(
    col(MembershipRow.user_id) == bindparam("user_id"),
    col(MembershipRow.conversation_id).in_(bindparam("conversation_ids", expanding=True)),
)
_MEMBERSHIP = select(MembershipRow).where(
    col(MembershipRow.conversation_id) == bindparam("conversation_id"),
    col(MembershipRow.user_id) == bindparam("user_id"),
)
_MOVE_READ_MARKER = (
    update(MembershipRow)
    .where(
        col(MembershipRow.conversation_id) == bindparam("in_conversation"),
        col(MembershipRow.user_id) == bindparam("of_user"),
    )
    .values(
        last_read_seq=case(
            (col(MembershipRow.last_read_seq) < bindparam("to_seq"), bindparam("to_seq")),
            else_=col(MembershipRow.last_read_seq),
        )
    )
)
_ALLOCATE_SEQ = (
    update(ConversationRow)
    .where(col(ConversationRow.id) == bindparam("conversation_id"))
    .values(last_seq=col(ConversationRow.last_seq) + 1, last_activity_at=bindparam("now"))
    .returning(col(ConversationRow.last_seq))
)
_LOCKED_CONVERSATION = (
    select(ConversationRow)
    .where(col(ConversationRow.id) == bindparam("conversation_id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


def direct_key(user_a: int, user_b: int) -> str:
    low, high = sorted((user_a, user_b))
    return f"{low}:{high}"


async def get_conversations(session: AsyncSession, *, ids: Sequence[int]) -> list[ConversationRow]:
    if not ids:
        return []
    result = await session.execute(_CONVERSATIONS, {"ids": list(ids)})
    return list(result.scalars())


async def get_direct_conversation(session: AsyncSession, *, key: str) -> ConversationRow | None:
    result = await session.execute(
        select(ConversationRow).where(col(ConversationRow.direct_key) == key)
    )
    return result.scalar_one_or_none()


async def create_conversation(
    session: AsyncSession,
    *,
    kind: ConversationKind,
    created_by: int,
    now: datetime,
    title: str | None = None,
    description: str | None = None,
    is_public: bool = False,
    direct_key: str | None = None,
) -> ConversationRow:
    row = ConversationRow(
        kind=kind,
        title=title,
        title_key=title.casefold() if title is not None else None,
        description=description,
        is_public=is_public,
        direct_key=direct_key,
        created_by=created_by,
        created_at=now,
        last_activity_at=now,
        last_seq=0,
    )
    session.add(row)
    await session.flush()
    return row


async def update_group(
    session: AsyncSession, *, conversation: ConversationRow, changes: dict[str, Any]
) -> ConversationRow:
    for name, value in changes.items():
        setattr(conversation, name, value)
        if name == "title":
            conversation.title_key = value.casefold()
    session.add(conversation)
    await session.flush()
    return conversation


async def list_conversations_for_user(
    session: AsyncSession,
    *,
    user_id: int,
    kind: ConversationKind | None,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[ConversationRow]:
    """The user's conversations, newest activity first (keyset on activity time, id)."""
    query = (
        select(ConversationRow)
        .join(MembershipRow, col(MembershipRow.conversation_id) == col(ConversationRow.id))
        .where(col(MembershipRow.user_id) == user_id)
        .order_by(col(ConversationRow.last_activity_at).desc(), col(ConversationRow.id).desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(col(ConversationRow.kind) == kind)
    if after is not None:
        at, conversation_id = after
        query = query.where(
            or_(
                col(ConversationRow.last_activity_at) < at,
                and_(
                    col(ConversationRow.last_activity_at) == at,
                    col(ConversationRow.id) < conversation_id,
                ),
            )
        )
    result = await session.execute(query)
    return list(result.scalars())


async def list_public_groups(
    session: AsyncSession, *, search: str | None, after: tuple[str, int] | None, limit: int
) -> list[ConversationRow]:
    """Public groups by title (case-insensitive), optionally those whose title contains search."""
    query = (
        select(ConversationRow)
        .where(
            col(ConversationRow.kind) == ConversationKind.GROUP,
            col(ConversationRow.is_public).is_(True),
        )
        .order_by(col(ConversationRow.title_key), col(ConversationRow.id))
        .limit(limit)
    )
    if search:
        escaped = search.casefold().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(col(ConversationRow.title_key).like(f"%{escaped}%", escape="\\"))
    if after is not None:
        key, conversation_id = after
        query = query.where(
            or_(
                col(ConversationRow.title_key) > key,
                and_(
                    col(ConversationRow.title_key) == key, col(ConversationRow.id) > conversation_id
                ),
            )
        )
    result = await session.execute(query)
    return list(result.scalars())


# ------------------------------------------------------------------ memberships


async def get_memberships_of_user(
    session: AsyncSession, *, user_id: int, conversation_ids: Sequence[int]
) -> list[MembershipRow]:
    if not conversation_ids:
        return []
    result = await session.execute(
        _MEMBERSHIPS_OF_USER, {"user_id": user_id, "conversation_ids": list(conversation_ids)}
    )
    return list(result.scalars())


async def get_membership(
    session: AsyncSession, *, conversation_id: int, user_id: int
) -> MembershipRow | None:
    result = await session.execute(
        _MEMBERSHIP, {"conversation_id": conversation_id, "user_id": user_id}
    )
    return result.scalar_one_or_none()


async def list_members(
    session: AsyncSession, *, conversation_id: int, after_id: int | None, limit: int
) -> list[MembershipRow]:
    """Members in the order they joined (keyset on the membership id)."""
    query = (
        select(MembershipRow)
        .where(col(MembershipRow.conversation_id) == conversation_id)
        .order_by(col(MembershipRow.id))
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(col(MembershipRow.id) > after_id)
    result = await session.execute(query)
    return list(result.scalars())


async def all_members(session: AsyncSession, *, conversation_id: int) -> list[MembershipRow]:
    result = await session.execute(
        select(MembershipRow)
        .where(col(MembershipRow.conversation_id) == conversation_id)
        .order_by(col(MembershipRow.id))
    )
    return list(result.scalars())


async def count_members(
    session: AsyncSession, *, conversation_ids: Sequence[int]
) -> dict[int, int]:
    if not conversation_ids:
        return {}
    result = await session.execute(
        select(col(MembershipRow.conversation_id), func.count())
        .where(col(MembershipRow.conversation_id).in_(conversation_ids))
        .group_by(col(MembershipRow.conversation_id))
    )
    return {conversation_id: count for conversation_id, count in result.all()}


async def get_peers(
    session: AsyncSession, *, user_id: int, conversation_ids: Sequence[int]
) -> dict[int, int]:
    """For direct conversations: the other participant's user id, by conversation."""
    if not conversation_ids:
        return {}
    result = await session.execute(
        select(col(MembershipRow.conversation_id), col(MembershipRow.user_id)).where(
            col(MembershipRow.conversation_id).in_(conversation_ids),
            col(MembershipRow.user_id) != user_id,
        )
    )
    return {conversation_id: peer_id for conversation_id, peer_id in result.all()}


async def add_member(
    session: AsyncSession, *, conversation_id: int, user_id: int, role: Role, now: datetime
) -> MembershipRow:
    row = MembershipRow(
        conversation_id=conversation_id, user_id=user_id, role=role, joined_at=now, last_read_seq=0
    )
    session.add(row)
    await session.flush()
    return row


async def remove_member(session: AsyncSession, *, conversation_id: int, user_id: int) -> None:
    await session.execute(
        delete(MembershipRow).where(
            col(MembershipRow.conversation_id) == conversation_id,
            col(MembershipRow.user_id) == user_id,
        )
    )


async def set_role(
    session: AsyncSession, *, conversation_id: int, user_id: int, role: Role
) -> None:
    await session.execute(
        update(MembershipRow)
        .where(
            col(MembershipRow.conversation_id) == conversation_id,
            col(MembershipRow.user_id) == user_id,
        )
        .values(role=role)
    )


async def move_read_marker(
    session: AsyncSession, *, conversation_id: int, user_id: int, seq: int
) -> None:
    """Raise the member's read marker to seq; it never moves back."""
    await session.execute(
        # An UPDATE's parameters cannot be named as its table's columns.
        _MOVE_READ_MARKER,
        {"in_conversation": conversation_id, "of_user": user_id, "to_seq": seq},
    )


# --------------------------------------------------------------------- timeline


async def append_event(
    session: AsyncSession,
    *,
    conversation_id: int,
    kind: EventKind,
    now: datetime,
    actor_id: int | None,
    message_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> EventRow:
    """Take the conversation's next seq and record the event under it.

    The UPDATE … RETURNING locks the conversation row until the transaction
    ends, so concurrent writers to one conversation line up: none shares or
    skips a seq, and a rolled-back writer gives its seq back.
    """
    seq = await allocate_seq(session, conversation_id=conversation_id, now=now)
    return await insert_event(
        session,
        conversation_id=conversation_id,
        seq=seq,
        kind=kind,
        now=now,
        actor_id=actor_id,
        message_id=message_id,
        payload=payload,
    )


async def insert_event(
    session: AsyncSession,
    *,
    conversation_id: int,
    seq: int,
    kind: EventKind,
    now: datetime,
    actor_id: int | None,
    message_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> EventRow:
    """Record an event under a seq already taken with allocate_seq."""
    return await inserted(
        session,
        EventRow,
        conversation_id=conversation_id,
        seq=seq,
        kind=kind,
        message_id=message_id,
        actor_id=actor_id,
        payload=payload,
        created_at=now,
    )


async def allocate_seq(session: AsyncSession, *, conversation_id: int, now: datetime) -> int:
    result = await session.execute(_ALLOCATE_SEQ, {"conversation_id": conversation_id, "now": now})
    return int(result.scalar_one())


async def list_events(
    session: AsyncSession, *, conversation_id: int, after_seq: int, limit: int
) -> list[EventRow]:
    result = await session.execute(
        select(EventRow)
        .where(col(EventRow.conversation_id) == conversation_id, col(EventRow.seq) > after_seq)
        .order_by(col(EventRow.seq))
        .limit(limit)
    )
    return list(result.scalars())


async def lock_conversation(
    session: AsyncSession, *, conversation_id: int
) -> ConversationRow | None:
    """Read the conversation with a row lock held to commit (a no-op lock on SQLite)."""
    result = await session.execute(_LOCKED_CONVERSATION, {"conversation_id": conversation_id})
    return result.scalar_one_or_none()


async def last_seqs(session: AsyncSession, *, conversation_ids: Sequence[int]) -> dict[int, int]:
    if not conversation_ids:
        return {}
    result = await session.execute(
        select(col(ConversationRow.id), col(ConversationRow.last_seq)).where(
            col(ConversationRow.id).in_(conversation_ids)
        )
    )
    return {conversation_id: last_seq for conversation_id, last_seq in result.all()}


async def conversation_ids_of_user(session: AsyncSession, *, user_id: int) -> list[int]:
    result = await session.execute(
        select(col(MembershipRow.conversation_id)).where(col(MembershipRow.user_id) == user_id)
    )
    return list(result.scalars())
