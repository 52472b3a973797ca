"""Sending, editing, deleting, reactions and read markers, over HTTP against a real server."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from tests.client import Client, NewUser
from tests.operations import (
    ADD_MEMBERS,
    ADD_REACTION,
    CONVERSATION,
    DELETE_MESSAGE,
    EDIT_MESSAGE,
    HISTORY,
    MARK_READ,
    REACTION_FIELDS,
    SEND,
    SET_ROLE,
    conversation,
    create_group,
    history,
    made_up_id,
    open_direct,
    send,
)

REMOVE_REACTION = (
    "mutation Unreact($id: ID!, $emoji: String!) "
    "{ removeReaction(messageId: $id, emoji: $emoji) { " + REACTION_FIELDS + " } }"
)
MESSAGE_NODE = (
    "query Node($id: ID!) { node(id: $id) { ... on Message { " + REACTION_FIELDS + " } } }"
)


async def test_body_is_kept_exactly_as_sent(new_user: NewUser) -> None:
    # given
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    body = "  \tHello,\n\n  world!\t\n  "
    # when
    sent = await send(ann, group, body)
    # then
    assert (sent["body"], sent["kind"], sent["author"]) == (body, "TEXT", {"id": ann.id})
    assert sent["editedAt"] is None and sent["deletedAt"] is None
    assert [m["body"] for m in await history(bob, group)][-1] == body
    assert (await conversation(bob, group))["lastMessage"]["body"] == body


async def test_body_length_is_counted_after_trimming(new_user: NewUser) -> None:
    # given
    ann = await new_user()
    group, _ = await create_group(ann)
    padded = "\n  " + "x" * 4000 + "  \n\t"
    # when / then
    assert (await send(ann, group, padded))["body"] == padded
    error = await ann.client.error(SEND, input={"conversationId": group, "body": "y" * 4001})
    assert (error.code, error.errors[0]["extensions"].get("field")) == ("BAD_USER_INPUT", "body")


async def test_empty_and_control_character_bodies_are_refused(new_user: NewUser) -> None:
    # given
    ann = await new_user()
    group, _ = await create_group(ann)
    seq = (await conversation(ann, group))["lastSeq"]
    # when / then
    for body in ["", " ", "\n\t \n", "nul\x00", "bell\x07", "\x1b[31mred", "del\x7f", "a\u2028b"]:
        error = await ann.client.error(SEND, input={"conversationId": group, "body": body})
        assert error.code == "BAD_USER_INPUT", repr(body)
    assert (await conversation(ann, group))["lastSeq"] == seq


async def test_resending_with_a_client_message_id_returns_the_same_message(
    new_user: NewUser,
) -> None:
    # given
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    key = str(uuid.uuid4())
    first = await send(ann, group, "once", clientMessageId=key)
    seq = (await conversation(ann, group))["lastSeq"]
    # when: the same key again, even with another body
    again = await send(ann, group, "twice?", clientMessageId=key)
    # then
    assert again == first
    assert first["clientMessageId"] == key
    assert (await conversation(ann, group))["lastSeq"] == seq
    # when: another sender uses the same key
    bobs = await send(bob, group, "mine", clientMessageId=key)
    # then: it is a message of its own
    assert bobs["id"] != first["id"] and bobs["seq"] == seq + 1
    assert [m["body"] for m in await history(ann, group)][-2:] == ["once", "mine"]


async def test_reply_to_a_message_of_the_same_conversation_only(new_user: NewUser) -> None:
    # given
    ann, bob, cy = await new_user(), await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    elsewhere, _ = await create_group(ann)
    hidden, _ = await create_group(cy)
    original = await send(bob, group, "question?")
    reply = await send(ann, group, "answer", replyToId=original["id"])
    # when / then
    assert reply["replyTo"] == {"id": original["id"], "body": "question?"}
    foreign = (await send(ann, elsewhere, "other"))["id"]
    secret = (await send(cy, hidden, "secret"))["id"]
    for target in (foreign, secret):
        error = await ann.client.error(
            SEND, input={"conversationId": group, "body": "x", "replyToId": target}
        )
        assert error.code == "BAD_USER_INPUT"
        assert "secret" not in str(error.errors)


async def test_only_the_author_edits(new_user: NewUser) -> None:
    # given
    owner, author, outsider = await new_user(), await new_user(), await new_user()
    group, _ = await create_group(owner, author)
    message = await send(author, group, "typo")
    # when
    edited = (await author.client(EDIT_MESSAGE, id=message["id"], body="  fixed\n"))["editMessage"]
    # then
    assert (edited["id"], edited["seq"], edited["body"]) == (
        message["id"],
        message["seq"],
        "  fixed\n",
    )
    assert edited["editedAt"] is not None
    assert (
        await owner.client.error(EDIT_MESSAGE, id=message["id"], body="mine")
    ).code == "FORBIDDEN"
    assert (
        await outsider.client.error(EDIT_MESSAGE, id=message["id"], body="x")
    ).code == "NOT_FOUND"
    assert (
        await author.client.error(EDIT_MESSAGE, id=message["id"], body=" ")
    ).code == "BAD_USER_INPUT"
    system = (await history(owner, group))[0]
    assert system["kind"] == "SYSTEM"
    assert (await owner.client.error(EDIT_MESSAGE, id=system["id"], body="x")).code == "FORBIDDEN"
    stored = next(m for m in await history(owner, group) if m["id"] == message["id"])
    assert (stored["body"], stored["editedAt"]) == ("  fixed\n", edited["editedAt"])


async def test_delete_by_author_or_group_moderators(new_user: NewUser) -> None:
    # given
    owner, admin, member, other = [await new_user() for _ in range(4)]
    group, _ = await create_group(owner, admin, member, other)
    await owner.client(SET_ROLE, id=group, userId=admin.id, role="ADMIN")
    texts = [await send(member, group, f"text {i}") for i in range(3)]
    await owner.client(ADD_REACTION, id=texts[0]["id"], emoji="👍")
    # when / then: another member may not
    assert (await other.client.error(DELETE_MESSAGE, id=texts[0]["id"])).code == "FORBIDDEN"
    # when / then: the author, an admin and the owner may
    for actor, text in zip((member, admin, owner), texts, strict=True):
        deleted = (await actor.client(DELETE_MESSAGE, id=text["id"]))["deleteMessage"]
        assert (deleted["id"], deleted["body"]) == (text["id"], None)
        assert deleted["deletedAt"] is not None
    stored = {m["id"]: m for m in await history(other, group)}
    for text in texts:
        assert stored[text["id"]]["body"] is None and stored[text["id"]]["deletedAt"]
    assert stored[texts[0]["id"]]["reactions"] == []
    error = await member.client.error(ADD_REACTION, id=texts[0]["id"], emoji="👍")
    assert error.code == "BAD_USER_INPUT"
    assert (
        await member.client.error(EDIT_MESSAGE, id=texts[1]["id"], body="x")
    ).code == "BAD_USER_INPUT"


async def test_peer_cannot_delete_in_a_direct_conversation(new_user: NewUser) -> None:
    # given
    ann, bob = await new_user(), await new_user()
    direct = await open_direct(ann, bob)
    message = await send(ann, direct, "mine")
    # when / then
    assert (await bob.client.error(DELETE_MESSAGE, id=message["id"])).code == "FORBIDDEN"
    assert [m["body"] for m in await history(bob, direct)] == ["mine"]
    assert (await ann.client(DELETE_MESSAGE, id=message["id"]))["deleteMessage"]["body"] is None


async def test_reactions_count_per_emoji_and_viewer(new_user: NewUser) -> None:
    # given
    ann, bob, cy, outsider = [await new_user() for _ in range(4)]
    group, _ = await create_group(ann, bob, cy)
    message = (await send(cy, group, "react to me"))["id"]
    # when
    await ann.client(ADD_REACTION, id=message, emoji="👍")
    seq = (await conversation(ann, group))["lastSeq"]
    again = (await ann.client(ADD_REACTION, id=message, emoji="👍"))["addReaction"]
    await bob.client(ADD_REACTION, id=message, emoji="👍")
    await bob.client(ADD_REACTION, id=message, emoji="🎉")
    # then
    assert again["reactions"] == [{"emoji": "👍", "count": 1, "viewerHasReacted": True}]
    assert (await conversation(ann, group))["lastSeq"] == seq + 2
    seen = {
        u.id: (await u.client(MESSAGE_NODE, id=message))["node"]["reactions"] for u in (ann, cy)
    }
    assert seen[ann.id] == [
        {"emoji": "👍", "count": 2, "viewerHasReacted": True},
        {"emoji": "🎉", "count": 1, "viewerHasReacted": False},
    ]
    assert [r["viewerHasReacted"] for r in seen[cy.id]] == [False, False]
    # when: removing, twice
    removed = (await ann.client(REMOVE_REACTION, id=message, emoji="👍"))["removeReaction"]
    twice = (await ann.client(REMOVE_REACTION, id=message, emoji="👍"))["removeReaction"]
    # then
    expected = [
        {"emoji": "👍", "count": 1, "viewerHasReacted": False},
        {"emoji": "🎉", "count": 1, "viewerHasReacted": False},
    ]
    assert removed["reactions"] == twice["reactions"] == expected
    assert (await ann.client.error(ADD_REACTION, id=message, emoji=" ")).code == "BAD_USER_INPUT"
    hidden = await outsider.client.error(ADD_REACTION, id=message, emoji="👍")
    assert hidden.code == "NOT_FOUND"


async def test_concurrent_identical_reactions_count_once(new_user: NewUser) -> None:
    # given
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    message = (await send(bob, group, "double tap"))["id"]
    seq = (await conversation(ann, group))["lastSeq"]
    emojis = ["❤️", "👍", "🎉", "😂"]
    # when: double taps, many times over, on several emojis
    results = await asyncio.gather(
        *(
            ann.client.raw(ADD_REACTION, {"id": message, "emoji": emoji})
            for emoji in emojis
            for _ in range(8)
        )
    )
    # then: every tap succeeds, and each reaction is there once
    assert [r.get("errors") for r in results] == [None] * 32
    summary = (await bob.client(MESSAGE_NODE, id=message))["node"]["reactions"]
    assert sorted(r["emoji"] for r in summary) == sorted(emojis)
    assert {(r["count"], r["viewerHasReacted"]) for r in summary} == {(1, False)}
    assert (await conversation(ann, group))["lastSeq"] == seq + 4


async def test_mark_read_never_moves_back_and_clamps(new_user: NewUser) -> None:
    # given: Bob has three unread messages
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    seqs = [(await send(ann, group, f"m{i}"))["seq"] for i in range(3)]
    assert (await conversation(bob, group))["unreadCount"] == 3
    # when / then
    marked = (await bob.client(MARK_READ, id=group, seq=seqs[1]))["markRead"]
    assert (marked["viewerLastReadSeq"], marked["unreadCount"]) == (seqs[1], 1)
    back = (await bob.client(MARK_READ, id=group, seq=seqs[0]))["markRead"]
    assert (back["viewerLastReadSeq"], back["unreadCount"]) == (seqs[1], 1)
    beyond = (await bob.client(MARK_READ, id=group, seq=seqs[2] + 1000))["markRead"]
    assert (beyond["viewerLastReadSeq"], beyond["unreadCount"]) == (seqs[2], 0)
    assert beyond["lastSeq"] == seqs[2]
    negative = await bob.client.error(MARK_READ, id=group, seq=-1)
    assert negative.code == "BAD_USER_INPUT"
    seen = await conversation(ann, group)
    markers = {e["node"]["user"]["id"]: e["node"]["lastReadSeq"] for e in seen["members"]["edges"]}
    assert markers == {ann.id: seqs[2], bob.id: seqs[2]}
    # then: a later message is unread again
    await send(ann, group, "m3")
    assert (await conversation(bob, group))["unreadCount"] == 1


async def test_unread_count_skips_own_and_system_messages(new_user: NewUser) -> None:
    # given
    ann, bob, cy = await new_user(), await new_user(), await new_user()
    group, _ = await create_group(ann, bob)
    await ann.client(ADD_MEMBERS, id=group, userIds=[cy.id])
    # when / then
    assert (await conversation(bob, group))["unreadCount"] == 0
    await send(bob, group, "from bob")
    await send(bob, group, "again")
    assert (await conversation(bob, group))["unreadCount"] == 0
    assert (await conversation(ann, group))["unreadCount"] == 2
    assert (await conversation(cy, group))["unreadCount"] == 2


async def test_non_members_can_neither_send_nor_read(new_user: NewUser) -> None:
    # given: a private group, and an ID that names no conversation at all
    owner, outsider = await new_user(), await new_user()
    group, _ = await create_group(owner)
    message = await send(owner, group, "private words")
    nowhere = made_up_id("Group")
    cases: list[tuple[str, dict[str, Any]]] = [
        (SEND, {"input": {"conversationId": group, "body": "hi"}}),
        (HISTORY, {"id": group}),
        (CONVERSATION, {"id": group}),
        (MARK_READ, {"id": group, "seq": 1}),
    ]
    for query, variables in cases:
        # when
        result = await outsider.client.raw(query, variables)
        missing = await outsider.client.raw(query, swap(variables, group, nowhere))
        # then: NOT_FOUND, worded as for a conversation that does not exist
        assert result["errors"][0]["extensions"]["code"] == "NOT_FOUND", query
        assert result["errors"][0]["message"] == missing["errors"][0]["message"]
        assert "private words" not in str(result)
        assert not any((result.get("data") or {}).values())
    for query in (EDIT_MESSAGE, DELETE_MESSAGE, ADD_REACTION):
        error = await outsider.client.error(query, id=message["id"], body="x", emoji="x")
        assert error.code == "NOT_FOUND", query
    assert [m["body"] for m in await history(owner, group)][-1:] == ["private words"]


def swap(variables: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    text = json.dumps(variables).replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    return dict(json.loads(text))


async def test_unauthenticated_calls_are_refused(client: Client, new_user: NewUser) -> None:
    # given
    ann = await new_user()
    group, _ = await create_group(ann)
    message = await send(ann, group, "hello")
    # when / then
    for anonymous in (client, client.as_user("not-a-token")):
        anonymous_cases: list[tuple[str, dict[str, Any]]] = [
            (SEND, {"input": {"conversationId": group, "body": "hi"}}),
            (HISTORY, {"id": group}),
            (MARK_READ, {"id": group, "seq": 1}),
            (ADD_REACTION, {"id": message["id"], "emoji": "👍"}),
            (DELETE_MESSAGE, {"id": message["id"]}),
        ]
        for query, variables in anonymous_cases:
            error = await anonymous.error(query, variables)
            assert error.code == "UNAUTHENTICATED", query
    assert [m["body"] for m in await history(ann, group)][-1] == "hello"


async def test_later_fields_of_one_mutation_document_see_earlier_writes(
    new_user: NewUser,
) -> None:
    # given
    ann = await new_user()
    group, _ = await create_group(ann)
    # when one document sends twice, then changes the profile twice
    data = await ann.client(
        """
        mutation($c: ID!) {
          x: sendMessage(input: {conversationId: $c, body: "three"}) {
            seq conversation { lastMessage { body } }
          }
          y: sendMessage(input: {conversationId: $c, body: "four"}) {
            seq conversation { lastMessage { body } lastSeq }
          }
          p: updateProfile(input: {displayName: "Second"}) { displayName }
          q: updateProfile(input: {avatarUrl: "https://example.test/a.png"}) {
            displayName avatarUrl
          }
        }
        """,
        c=group,
    )
    # then each field shows the state after the fields before it
    assert data["x"]["conversation"]["lastMessage"]["body"] == "three"
    assert data["y"]["conversation"]["lastMessage"]["body"] == "four"
    assert data["y"]["conversation"]["lastSeq"] == data["y"]["seq"]
    assert data["q"] == {"displayName": "Second", "avatarUrl": "https://example.test/a.png"}
    viewer = await ann.client("{ viewer { displayName avatarUrl } }")
    assert viewer["viewer"] == data["q"]
