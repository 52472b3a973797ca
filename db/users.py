"""Queries on users."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from db.models import UserRow


def username_key(username: str) -> str:
    return username.casefold()


# Built once (see db/conversations.py, "Built once").
_USERS = select(UserRow).where(col(UserRow.id).in_(bindparam("ids", expanding=True)))


async def get_users(session: AsyncSession, *, ids: Sequence[int]) -> list[UserRow]:
    if not ids:
        return []
    result = await session.execute(_USERS, {"ids": list(ids)})
    return list(result.scalars())


async def get_user_by_username(session: AsyncSession, *, username: str) -> UserRow | None:
    result = await session.execute(
        select(UserRow).where(col(UserRow.username_key) == username_key(username))
    )
    return result.scalar_one_or_none()


async def get_user_for_update(session: AsyncSession, *, user_id: int) -> UserRow:
    result = await session.execute(
        select(UserRow)
        .where(col(UserRow.id) == user_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one()


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    display_name: str,
    password_hash: str | None,
    now: datetime,
) -> UserRow:
    """Insert a user; a taken name raises IntegrityError at flush."""
    user = UserRow(
        username=username,
        username_key=username_key(username),
        display_name=display_name,
        display_name_key=display_name.casefold(),
        password_hash=password_hash,
        created_at=now,
    )
    session.add(user)
    await session.flush()
    return user


async def search_users(
    session: AsyncSession, *, prefix: str | None, after_key: str | None, limit: int
) -> list[UserRow]:
    """Users by username, optionally those whose username or display name starts with prefix."""
    query = select(UserRow).order_by(col(UserRow.username_key))
    if prefix:
        pattern = _escape_like(prefix.casefold()) + "%"
        query = query.where(
            or_(
                col(UserRow.username_key).like(pattern, escape="\\"),
                col(UserRow.display_name_key).like(pattern, escape="\\"),
            )
        )
    if after_key is not None:
        query = query.where(col(UserRow.username_key) > after_key)
    result = await session.execute(query.limit(limit))
    return list(result.scalars())


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def update_profile(
    session: AsyncSession,
    *,
    user: UserRow,
    display_name: str | None,
    avatar_url: str | None,
    clear_avatar: bool,
) -> UserRow:
    if display_name is not None:
        user.display_name = display_name
        user.display_name_key = display_name.casefold()
    if avatar_url is not None or clear_avatar:
        user.avatar_url = avatar_url
    session.add(user)
    await session.flush()
    return user


async def set_last_seen(session: AsyncSession, *, user_ids: Sequence[int], at: datetime) -> None:
    if user_ids:
        await session.execute(
            update(UserRow).where(col(UserRow.id).in_(user_ids)).values(last_seen_at=at)
        )
