"""Users: lookups, search and profile changes."""

from __future__ import annotations

from typing import Any

from db import users
from db.models import UserRow
from resolvers import validation
from resolvers.context import Context
from resolvers.paging import Page, forward_limit, forward_page
from schema.errors import BadUserInput
from schema.ids import decode_cursor, encode_cursor


async def by_id(ctx: Context, user_id: int) -> UserRow | None:
    await ctx.require_viewer()
    return await ctx.loaders.users.load(user_id)


async def by_username(ctx: Context, username: str) -> UserRow | None:
    await ctx.require_viewer()
    username = username.strip()
    if not validation.plausible_username(username):
        return None
    async with ctx.db.read() as session:
        user = await users.get_user_by_username(session, username=username)
    if user is not None:
        ctx.loaders.remember(user)
    return user


async def search(
    ctx: Context, *, search: str | None, first: int | None, after: str | None
) -> Page[UserRow]:
    await ctx.require_viewer()
    limit = forward_limit(first)
    prefix = validation.search_text(search, field="search")
    connection = f"users:{(prefix or '').casefold()}"  # another search is another list
    after_key = decode_cursor(after, connection, str)[0] if after is not None else None
    async with ctx.db.read() as session:
        rows = await users.search_users(
            session,
            prefix=prefix,
            after_key=after_key,
            limit=limit + 1,
        )
    ctx.loaders.remember(*rows)
    return forward_page(
        rows,
        limit=limit,
        after_given=after is not None,
        cursor=lambda row: encode_cursor(connection, row.username_key),
    )


async def update_profile(ctx: Context, *, changes: dict[str, Any]) -> UserRow:
    """Set displayName and/or avatarUrl; avatarUrl null removes the avatar."""
    viewer = await ctx.require_viewer()
    display_name = None
    if "display_name" in changes:
        if changes["display_name"] is None:
            raise BadUserInput("A display name cannot be removed.", field="displayName")
        display_name = validation.single_line(
            changes["display_name"], field="displayName", max_length=64
        )
    avatar_url = changes.get("avatar_url")
    if avatar_url:
        avatar_url = validation.url(avatar_url, field="avatarUrl")
    async with ctx.db.transaction() as work:
        # The row as it is now (an earlier mutation of this document may have
        # changed it), never the copy read when the operation began.
        user = await users.get_user_for_update(work.session, user_id=viewer.id)
        user = await users.update_profile(
            work.session,
            user=user,
            display_name=display_name,
            avatar_url=avatar_url or None,
            clear_avatar="avatar_url" in changes and not avatar_url,
        )
    ctx.scope.viewer = user
    ctx.loaders.remember(user)
    return user
