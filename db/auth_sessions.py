"""Queries on signed-in sessions and their refresh tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from db.models import AuthSessionRow, RefreshTokenRow, UserRow


async def create_session(
    session: AsyncSession, *, user_id: int, now: datetime, expires_at: datetime
) -> AuthSessionRow:
    row = AuthSessionRow(user_id=user_id, created_at=now, last_used_at=now, expires_at=expires_at)
    session.add(row)
    await session.flush()
    return row


async def add_refresh_token(
    session: AsyncSession, *, session_id: int, token_hash: str, now: datetime
) -> None:
    session.add(RefreshTokenRow(session_id=session_id, token_hash=token_hash, created_at=now))
    await session.flush()


async def find_refresh_token(
    session: AsyncSession, *, token_hash: str
) -> tuple[RefreshTokenRow, AuthSessionRow] | None:
    result = await session.execute(
        select(RefreshTokenRow, AuthSessionRow)
        .join(AuthSessionRow, col(AuthSessionRow.id) == col(RefreshTokenRow.session_id))
        .where(col(RefreshTokenRow.token_hash) == token_hash)
    )
    row = result.first()
    return (row[0], row[1]) if row else None


async def spend_refresh_token(session: AsyncSession, *, token_id: int, now: datetime) -> bool:
    """Mark a refresh token used; False when another request spent it first."""
    result = await session.execute(
        update(RefreshTokenRow)
        .where(col(RefreshTokenRow.id) == token_id, col(RefreshTokenRow.used_at).is_(None))
        .values(used_at=now)
    )
    return cast("CursorResult[Any]", result).rowcount == 1


async def touch_session(
    session: AsyncSession, *, session_id: int, now: datetime, expires_at: datetime
) -> None:
    await session.execute(
        update(AuthSessionRow)
        .where(col(AuthSessionRow.id) == session_id)
        .values(last_used_at=now, expires_at=expires_at)
    )


async def revoke_session(session: AsyncSession, *, session_id: int, now: datetime) -> None:
    await session.execute(
        update(AuthSessionRow)
        .where(col(AuthSessionRow.id) == session_id, col(AuthSessionRow.revoked_at).is_(None))
        .values(revoked_at=now)
    )


# Run for every operation: built once (see db/conversations.py, "Built once").
_SIGNED_IN_USER = (
    select(UserRow)
    .join(AuthSessionRow, col(AuthSessionRow.user_id) == col(UserRow.id))
    .where(
        col(AuthSessionRow.id) == bindparam("session_id"),
        col(AuthSessionRow.user_id) == bindparam("user_id"),
        col(AuthSessionRow.revoked_at).is_(None),
        col(AuthSessionRow.expires_at) > bindparam("now"),
    )
)


async def get_signed_in_user(
    session: AsyncSession, *, session_id: int, user_id: int, now: datetime
) -> UserRow | None:
    """The user of a live (not revoked, not expired) session, in one statement."""
    result = await session.execute(
        _SIGNED_IN_USER, {"session_id": session_id, "user_id": user_id, "now": now}
    )
    return result.scalar_one_or_none()
