"""The HTTP baseline: plain FastAPI endpoints doing Parley's database work, no GraphQL.

Each endpoint runs the statements the GraphQL operation it stands for runs,
through the project's own query functions in ``db/`` on the same database
(the same engine settings: one pooled connection on SQLite), and answers JSON
of the same shape as the GraphQL response, so the ratio between the two is
what GraphQL, Strawberry and the resolvers' bookkeeping cost on top of the
work itself.

- ``POST /trivial``  the body read as JSON; answers ``{"data": {"__typename": "Query"}}``.
- ``POST /history``  ``{"conversationId", "last"}``: the viewer from the access
  token (``get_signed_in_user``), the membership and the conversation
  (``readable``), the page (``page_messages``), the messages replied to that
  the page does not hold, their and the page's authors, and the reactions:
  the statements of ``messages(last: 50)`` selecting authors, replyTo and
  reactions.
- ``POST /send``     ``{"conversationId", "body"}``: the viewer, then one
  transaction as ``sendMessage`` runs it (the conversation locked, the
  membership, the seq from the conversations row, the message, its event,
  the read marker), committed, then the two announcements Parley publishes
  (timeline and typing) through ``broadcaster``. Unlike Parley it does not
  validate the body's text.

Configured like Parley, from the environment: ``DATABASE_URL``,
``SECRET_KEY``, ``BROADCAST_URL`` (default ``memory://``), ``PORT``.

    python -m bench.plain_api
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from broadcaster import Broadcast
from fastapi import FastAPI, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from auth.tokens import TokenService, bearer_token
from db import auth_sessions, conversations, messages, users
from db.engine import create_engine, create_sessionmaker
from db.models import EventKind, MessageKind, MessageRow, UserRow

ANSWER = "application/json"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def global_id(type_name: str, key: int) -> str:
    """Parley's ids (schema/ids.py), spelled out here to import no GraphQL."""
    return _b64(f"{type_name}:{key}")


def cursor(conversation_id: int, seq: int) -> str:
    return _b64(json.dumps([f"messages:{conversation_id}", seq], separators=(",", ":")))


def _key(value: object, type_name: str) -> int:
    if not isinstance(value, str):
        raise ValueError(value)
    padded = value + "=" * (-len(value) % 4)
    found, _, key = base64.urlsafe_b64decode(padded).decode().partition(":")
    if found != type_name:
        raise ValueError(value)
    return int(key)


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body), status, media_type=ANSWER)


def _error(code: str, status: int = 200) -> Response:
    return _json(
        {"data": None, "errors": [{"message": code, "extensions": {"code": code}}]}, status
    )


def _user(row: UserRow | None, *, display_name: bool = True) -> dict[str, Any] | None:
    if row is None:
        return None
    user = {"id": global_id("User", row.id), "username": row.username}
    if display_name:
        user["displayName"] = row.display_name
    return user


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def create_app() -> FastAPI:
    database_url = os.environ["DATABASE_URL"]
    tokens = TokenService(os.environ["SECRET_KEY"], access_ttl=timedelta(minutes=15))
    broadcast = Broadcast(os.environ.get("BROADCAST_URL", "memory://"))
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url)
        state["sessions"] = create_sessionmaker(engine)
        await broadcast.connect()
        try:
            yield
        finally:
            await broadcast.disconnect()
            await engine.dispose()

    app = FastAPI(title="Parley plain baseline", lifespan=lifespan)

    async def viewer(session: AsyncSession, request: Request) -> UserRow | None:
        token = bearer_token(request.headers.get("authorization"))
        claims = tokens.read_access_token(token) if token else None
        if claims is None:
            return None
        return await auth_sessions.get_signed_in_user(
            session, session_id=claims.session_id, user_id=claims.user_id, now=datetime.now(UTC)
        )

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/trivial")
    async def trivial(request: Request) -> Response:
        json.loads(await request.body())
        return _json({"data": {"__typename": "Query"}})

    @app.post("/history")
    async def history(request: Request) -> Response:
        asked = json.loads(await request.body())
        conversation_id = _key(asked["conversationId"], "Group")
        last = int(asked["last"])
        async with state["sessions"]() as session:
            user = await viewer(session, request)
            if user is None:
                return _error("UNAUTHENTICATED")
            membership = await conversations.get_memberships_of_user(
                session, user_id=user.id, conversation_ids=[conversation_id]
            )
            found = await conversations.get_conversations(session, ids=[conversation_id])
            if not membership or not found:
                return _error("NOT_FOUND")
            rows = await messages.page_messages(
                session, conversation_id=conversation_id, limit=last + 1, newest_first=True
            )
            more = len(rows) > last
            rows = rows[:last]
            rows.reverse()
            held = {row.id: row for row in rows}
            missing = [
                row.reply_to_id
                for row in rows
                if row.reply_to_id is not None and row.reply_to_id not in held
            ]
            replied = {row.id: row for row in await messages.get_messages(session, ids=missing)}
            replied.update(held)
            shown = [*rows, *(replied[r.reply_to_id] for r in rows if r.reply_to_id in replied)]
            author_ids = {row.author_id for row in shown if row.author_id is not None}
            authors = {row.id: row for row in await users.get_users(session, ids=list(author_ids))}
            reactions = await messages.reaction_summaries(
                session, message_ids=[row.id for row in rows], viewer_id=user.id
            )

        def reply(row: MessageRow) -> dict[str, Any] | None:
            if row.reply_to_id is None or row.reply_to_id not in replied:
                return None
            to = replied[row.reply_to_id]
            return {
                "id": global_id("Message", to.id),
                "seq": to.seq,
                "body": to.body,
                "author": _user(authors.get(to.author_id or 0), display_name=False),
            }

        edges = [
            {
                "cursor": cursor(conversation_id, row.seq),
                "node": {
                    "id": global_id("Message", row.id),
                    "seq": row.seq,
                    "kind": row.kind,
                    "body": row.body,
                    "createdAt": _time(row.created_at),
                    "editedAt": _time(row.edited_at),
                    "author": _user(authors.get(row.author_id or 0)),
                    "replyTo": reply(row),
                    "reactions": [
                        {
                            "emoji": summary.emoji,
                            "count": summary.count,
                            "viewerHasReacted": summary.viewer_has_reacted,
                        }
                        for summary in reactions.get(row.id, [])
                    ],
                },
            }
            for row in rows
        ]
        page_info = {
            "hasPreviousPage": more,
            "hasNextPage": False,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        }
        return _json({"data": {"messages": {"edges": edges, "pageInfo": page_info}}})

    @app.post("/send")
    async def send(request: Request) -> Response:
        asked = json.loads(await request.body())
        conversation_id = _key(asked["conversationId"], "Group")
        body = str(asked["body"])
        async with state["sessions"]() as session:
            user = await viewer(session, request)
            if user is None:
                return _error("UNAUTHENTICATED")
            now = datetime.now(UTC)
            conversation = await conversations.lock_conversation(
                session, conversation_id=conversation_id
            )
            if conversation is None:
                return _error("NOT_FOUND")
            now = max(now, conversation.last_activity_at)
            membership = await conversations.get_membership(
                session, conversation_id=conversation_id, user_id=user.id
            )
            if membership is None:
                return _error("NOT_FOUND")
            seq = await conversations.allocate_seq(
                session, conversation_id=conversation_id, now=now
            )
            message = await messages.insert_message(
                session,
                conversation_id=conversation_id,
                seq=seq,
                kind=MessageKind.TEXT,
                author_id=user.id,
                body=body,
                now=now,
            )
            await conversations.insert_event(
                session,
                conversation_id=conversation_id,
                seq=seq,
                kind=EventKind.MESSAGE_ADDED,
                now=now,
                actor_id=user.id,
                message_id=message.id,
            )
            await conversations.move_read_marker(
                session, conversation_id=conversation_id, user_id=user.id, seq=seq
            )
            await session.commit()
        # What Parley announces after the commit (resolvers/live/publisher.py).
        await broadcast.publish(
            f"parley.conversation.{conversation_id}",
            json.dumps({"seq": seq, "kind": EventKind.MESSAGE_ADDED}),
        )
        await broadcast.publish(
            f"parley.typing.{conversation_id}", json.dumps({"user_id": user.id, "typing": False})
        )
        sent = {
            "id": global_id("Message", message.id),
            "seq": seq,
            "kind": message.kind,
            "body": message.body,
            "createdAt": _time(message.created_at),
            "author": _user(user, display_name=False),
        }
        return _json({"data": {"sendMessage": sent}})

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(),
        host="127.0.0.1",
        port=int(os.environ["PORT"]),
        log_level=os.environ.get("LOG_LEVEL", "warning").lower(),
    )
