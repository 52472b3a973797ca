"""SQLModel tables. GraphQL types live in ``schema/``; resolvers convert explicitly."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, BigInteger, Column, String, Text, UniqueConstraint, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel

from db.types import UTCDateTime


class ConversationKind(enum.StrEnum):
    DIRECT = "DIRECT"
    GROUP = "GROUP"


class Role(enum.StrEnum):
    OWNER = "OWNER"
    ADMIN = "ADMIN"
    MEMBER = "MEMBER"


ROLE_RANK = {Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}


class MessageKind(enum.StrEnum):
    TEXT = "TEXT"
    SYSTEM = "SYSTEM"


class EventKind(enum.StrEnum):
    """What a timeline event records. Every kind takes the conversation's next seq."""

    MESSAGE_ADDED = "MESSAGE_ADDED"
    MESSAGE_EDITED = "MESSAGE_EDITED"
    MESSAGE_DELETED = "MESSAGE_DELETED"
    REACTIONS_CHANGED = "REACTIONS_CHANGED"
    MEMBERS_CHANGED = "MEMBERS_CHANGED"
    CONVERSATION_UPDATED = "CONVERSATION_UPDATED"


class UserRow(SQLModel, table=True):
    __tablename__ = "users"

    id: int = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(String(32), nullable=False))
    # Uniqueness is case-insensitive: "Alice" and "alice" are one name.
    username_key: str = Field(sa_column=Column(String(32), nullable=False, unique=True))
    display_name: str = Field(sa_column=Column(String(64), nullable=False))
    # casefold() may triple a character ("ß" -> "ss", "ΐ" -> three): room for that.
    display_name_key: str = Field(sa_column=Column(String(192), nullable=False, index=True))
    avatar_url: str | None = Field(default=None, sa_column=Column(String(2048)))
    password_hash: str | None = Field(default=None, sa_column=Column(String(255)))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_seen_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class AuthSessionRow(SQLModel, table=True):
    """One signed-in device: the chain of refresh tokens that rotate within it."""

    __tablename__ = "auth_sessions"

    id: int = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_used_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class RefreshTokenRow(SQLModel, table=True):
    """A refresh token, stored as its SHA-256: the token itself is never kept."""

    __tablename__ = "refresh_tokens"

    id: int = Field(default=None, primary_key=True)
    session_id: int = Field(foreign_key="auth_sessions.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    used_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversations"

    id: int = Field(default=None, primary_key=True)
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    title: str | None = Field(default=None, sa_column=Column(String(100)))
    title_key: str | None = Field(default=None, sa_column=Column(String(300), index=True))
    description: str | None = Field(default=None, sa_column=Column(String(1000)))
    avatar_url: str | None = Field(default=None, sa_column=Column(String(2048)))
    is_public: bool = Field(default=False, index=True)
    # "low:high" user ids of a direct conversation: one conversation per pair.
    direct_key: str | None = Field(default=None, sa_column=Column(String(64), unique=True))
    created_by: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_activity_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    # The seq of the newest timeline event; the next event takes last_seq + 1.
    last_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class MembershipRow(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id"),)

    id: int = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", ondelete="CASCADE")
    user_id: int = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    role: str = Field(sa_column=Column(String(16), nullable=False))
    joined_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_read_seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # Idempotent sends: one message per (conversation, sender, client key).
        UniqueConstraint("conversation_id", "author_id", "client_message_id"),
    )

    id: int = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", ondelete="CASCADE")
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    author_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    body: str | None = Field(default=None, sa_column=Column(Text))
    client_message_id: str | None = Field(default=None, sa_column=Column(String(128)))
    reply_to_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="SET NULL")
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    edited_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    deleted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))


class ReactionRow(SQLModel, table=True):
    __tablename__ = "reactions"
    __table_args__ = (UniqueConstraint("message_id", "user_id", "emoji"),)

    id: int = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="users.id", ondelete="CASCADE")
    emoji: str = Field(sa_column=Column(String(64), nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class EventRow(SQLModel, table=True):
    """The timeline: one row per seq of a conversation, replayed by subscriptions."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("conversation_id", "seq"),)

    id: int = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", ondelete="CASCADE")
    seq: int = Field(sa_column=Column(BigInteger, nullable=False))
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    message_id: int | None = Field(default=None, foreign_key="messages.id", ondelete="CASCADE")
    actor_id: int | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    # Kind-specific details, e.g. {"added": [ids], "removed": [ids]} for members.
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


Table = TypeVar("Table", bound=SQLModel)


async def inserted(session: AsyncSession, table: type[Table], **values: Any) -> Table:
    """A new row, made by one ORM-enabled INSERT … RETURNING, as the session then holds it.

    What ``session.add`` and ``flush`` would give (a persistent object in the
    session's identity map, every column loaded), for a fraction of the work.
    Profile (py-spy, in-process ``sendMessage``): the two rows a message adds
    cost some 15% of the request in SQLModel's validating constructor and in
    the flush's unit of work; loaded from RETURNING, a row is built the way
    a query builds it. The values are the columns' (the tables here have no
    Python-side defaults: every default is a NULL).
    """
    row: Table | None = await session.scalar(insert(table).values(**values).returning(table))
    assert row is not None  # RETURNING gives the one row inserted
    return row
