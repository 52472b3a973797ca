"""Registration, sign-in, refresh-token rotation and sign-out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.passwords import hash_password, verify_password
from auth.tokens import hash_refresh_token, new_refresh_token
from db import auth_sessions, users
from db.models import UserRow
from resolvers import validation
from resolvers.context import Context
from schema.errors import BadUserInput, Conflict, Unauthenticated

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user: UserRow
    access_token: str
    access_token_expires_at: datetime
    refresh_token: str


async def register(
    ctx: Context, *, username: str, password: str, display_name: str | None
) -> SignedIn:
    username = validation.username(username)
    validation.password(password, for_username=username)
    display_name = validation.single_line(
        display_name if display_name is not None else username,
        field="displayName",
        max_length=64,
    )
    password_hash = await hash_password(password)
    try:
        async with ctx.db.transaction() as work:
            session = work.session
            if await users.get_user_by_username(session, username=username) is not None:
                raise _username_taken(username)
            user = await users.create_user(
                session,
                username=username,
                display_name=display_name,
                password_hash=password_hash,
                now=ctx.now,
            )
            signed_in = await _start_session(ctx, session, user)
    except IntegrityError:
        # Two registrations raced for the same name; the other one won.
        raise _username_taken(username) from None
    return signed_in


def _username_taken(username: str) -> Conflict:
    return Conflict(f"The username {username!r} is taken.", field="username")


async def login(ctx: Context, *, username: str, password: str) -> SignedIn:
    user = None
    if validation.plausible_username(username):
        async with ctx.db.read() as session:
            user = await users.get_user_by_username(session, username=username)
    # No connection is held while argon2 works (SQLite has only one).
    await ctx.db.close()
    # Verified even when the user does not exist, so timing tells nothing.
    valid = await verify_password(password, user.password_hash if user else None)
    if user is None or not valid:
        raise Unauthenticated("Wrong username or password.")
    async with ctx.db.transaction() as work:
        session = work.session
        return await _start_session(ctx, session, user)


async def refresh(ctx: Context, *, refresh_token: str) -> SignedIn:
    now = ctx.now
    async with ctx.db.transaction() as work:
        session = work.session
        found = await auth_sessions.find_refresh_token(
            session, token_hash=hash_refresh_token(refresh_token)
        )
        if found is None:
            raise Unauthenticated("Unknown refresh token: sign in again.")
        token, auth_session = found
        if auth_session.revoked_at is not None or auth_session.expires_at <= now:
            raise Unauthenticated("This session has ended: sign in again.")
        spent = token.used_at is None and await auth_sessions.spend_refresh_token(
            session,
            token_id=token.id,
            now=now,
        )
        if not spent:
            # A spent token came back: it may have been stolen, so the whole
            # session ends, for the thief and the rightful owner alike.
            await auth_sessions.revoke_session(session, session_id=auth_session.id, now=now)
            reuse = True
        else:
            reuse = False
            user = (await users.get_users(session, ids=[auth_session.user_id]))[0]
            signed_in = await _rotate(ctx, session, auth_session_id=auth_session.id, user=user)
    if reuse:
        logger.warning("refresh token reused; session %s revoked", auth_session.id)
        raise Unauthenticated("This refresh token was already used; the session is revoked.")
    return signed_in


async def logout(ctx: Context, *, refresh_token: str) -> bool:
    async with ctx.db.transaction() as work:
        session = work.session
        found = await auth_sessions.find_refresh_token(
            session, token_hash=hash_refresh_token(refresh_token)
        )
        if found is None or found[1].revoked_at is not None:
            return False
        await auth_sessions.revoke_session(session, session_id=found[1].id, now=ctx.now)
    return True


async def _start_session(ctx: Context, session: AsyncSession, user: UserRow) -> SignedIn:
    """Open a session for user, inside the caller's transaction."""
    now = ctx.now
    auth_session = await auth_sessions.create_session(
        session,
        user_id=user.id,
        now=now,
        expires_at=now + ctx.services.refresh_ttl,
    )
    return await _rotate(ctx, session, auth_session_id=auth_session.id, user=user)


async def _rotate(
    ctx: Context, session: AsyncSession, *, auth_session_id: int, user: UserRow
) -> SignedIn:
    """Issue a new token pair within the session, inside the caller's transaction."""
    now = ctx.now
    token, token_hash = new_refresh_token()
    await auth_sessions.add_refresh_token(
        session, session_id=auth_session_id, token_hash=token_hash, now=now
    )
    await auth_sessions.touch_session(
        session, session_id=auth_session_id, now=now, expires_at=now + ctx.services.refresh_ttl
    )
    access = ctx.services.tokens.issue_access_token(
        user_id=user.id,
        session_id=auth_session_id,
        now=now,
    )
    ctx.loaders.remember(user)
    return SignedIn(
        user=user,
        access_token=access.token,
        access_token_expires_at=access.expires_at,
        refresh_token=token,
    )


async def login_with_oidc(
    ctx: Context,  # noqa: ARG001 (a stub until OpenID Connect providers can be configured)
    *,
    provider: str,
    id_token: str,  # noqa: ARG001 (likewise)
) -> SignedIn:
    # OpenID Connect providers are configured by a later change; until one is,
    # every provider name is unknown, and saying so is the honest answer.
    raise BadUserInput(
        f"No OpenID Connect provider named {provider!r} is configured on this server.",
        field="provider",
    )
