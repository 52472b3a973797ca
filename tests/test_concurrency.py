"""Many clients writing to one conversation at once: seqs are unique and gap-free."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest

from tests.client import Client, NewUser, User

GROUP = "mutation G($input: CreateGroupInput!) { createGroup(input: $input) { id lastSeq } }"
SEND = """
mutation Send($input: SendMessageInput!) {
  sendMessage(input: $input) { id seq body clientMessageId }
}
"""
HISTORY = """
query History($id: ID!, $before: String) {
  conversation(id: $id) {
    lastSeq
    messages(last: 100, before: $before) {
      edges { node { seq body kind author { id } } }
      pageInfo { hasPreviousPage startCursor }
    }
  }
}
"""


async def _all_messages(user: User, group: str) -> tuple[int, list[dict[str, Any]]]:
    found: list[dict[str, Any]] = []
    before = None
    while True:
        data = (await user.client(HISTORY, id=group, before=before))["conversation"]
        page = data["messages"]
        found = [edge["node"] for edge in page["edges"]] + found
        if not page["pageInfo"]["hasPreviousPage"]:
            return data["lastSeq"], found
        before = page["pageInfo"]["startCursor"]


async def test_concurrent_senders_never_share_or_skip_a_seq(
    server_url: str, new_user: NewUser
) -> None:
    # given five members of one group, each on a connection of its own
    senders: list[User] = [await new_user() for _ in range(5)]
    owner = senders[0]
    created = (
        await owner.client(GROUP, input={"title": "busy", "memberIds": [s.id for s in senders[1:]]})
    )["createGroup"]
    group, start = created["id"], created["lastSeq"]

    async def burst(sender: User, index: int) -> list[int]:
        """40 sends, 4 in flight at a time; each send's seq, in the order they were sent."""
        acknowledged: list[int] = []
        async with httpx.AsyncClient(base_url=server_url, timeout=60) as http:
            client = Client(server_url, sender.token)
            client.http = http
            for start_n in range(0, 40, 4):
                results = await asyncio.gather(
                    *(
                        client(SEND, input={"conversationId": group, "body": f"{index}:{n}"})
                        for n in range(start_n, start_n + 4)
                    )
                )
                acknowledged += [r["sendMessage"]["seq"] for r in results]
        return acknowledged

    # when all of them send 40 messages at once
    batches = await asyncio.gather(*(burst(s, i) for i, s in enumerate(senders)))
    seqs = [seq for batch in batches for seq in batch]

    # then every acknowledged send has its own seq, and together they fill the range
    assert len(seqs) == len(set(seqs)) == 200
    assert sorted(seqs) == list(range(start + 1, start + 201))
    last_seq, messages = await _all_messages(owner, group)
    assert last_seq == start + 200
    texts = [m for m in messages if m["kind"] == "TEXT"]
    assert [m["seq"] for m in texts] == sorted(seqs)
    assert len({m["body"] for m in texts}) == 200
    # and each acknowledged seq holds the very message, by its very sender, acknowledged with it
    by_seq = {m["seq"]: (m["author"]["id"], m["body"]) for m in texts}
    for index, batch in enumerate(batches):
        sender = senders[index].id
        assert [by_seq[seq] for seq in batch] == [(sender, f"{index}:{n}") for n in range(40)]
        # and what a sender sent after an acknowledgement comes after it
        groups = [batch[g : g + 4] for g in range(0, 40, 4)]
        for earlier, later in itertools.pairwise(groups):
            assert max(earlier) < min(later)


async def test_concurrent_retries_with_one_client_message_id_store_one_message(
    new_user: NewUser,
) -> None:
    # given
    owner = await new_user()
    created = (await owner.client(GROUP, input={"title": "retries"}))["createGroup"]
    group, start = created["id"], created["lastSeq"]
    send = {"conversationId": group, "body": "only once", "clientMessageId": "retry-1"}
    # when the same send arrives ten times at once
    results = await asyncio.gather(*(owner.client(SEND, input=send) for _ in range(10)))
    # then all ten acknowledge the one stored message, which took the next seq and no other
    assert len({r["sendMessage"]["id"] for r in results}) == 1
    last_seq, messages = await _all_messages(owner, group)
    assert [m["body"] for m in messages if m["kind"] == "TEXT"] == ["only once"]
    assert last_seq == results[0]["sendMessage"]["seq"] == start + 1


REMOVE = "mutation R($c: ID!, $u: ID!) { removeMember(conversationId: $c, userId: $u) { id } }"
LATEST = """
query Latest($id: ID!) {
  conversation(id: $id) {
    messages(last: 20) { edges { node { seq kind body author { id } } } }
  }
}
"""


@pytest.mark.postgres
async def test_no_send_commits_after_the_senders_removal(new_user: NewUser) -> None:
    ann = await new_user()
    for _ in range(10):
        # given Carl in Ann's group
        carl = await new_user()
        group = (await ann.client(GROUP, input={"title": "race", "memberIds": [carl.id]}))[
            "createGroup"
        ]["id"]
        # when Ann removes him while he sends
        await asyncio.gather(
            ann.client.raw(REMOVE, {"c": group, "u": carl.id}),
            carl.client.raw(SEND, {"input": {"conversationId": group, "body": "last word"}}),
        )
        # then his message, if it was accepted, comes before the removal
        nodes = [
            e["node"]
            for e in (await ann.client(LATEST, id=group))["conversation"]["messages"]["edges"]
        ]
        removal = next(n["seq"] for n in nodes if n["kind"] == "SYSTEM" and "removed" in n["body"])
        assert all(
            n["seq"] < removal for n in nodes if n["author"] and n["author"]["id"] == carl.id
        )


@pytest.mark.postgres
async def test_edit_and_reaction_racing_a_delete_leave_it_deleted(new_user: NewUser) -> None:
    ann, bob = await new_user(), await new_user()
    group = (await ann.client(GROUP, input={"title": "race", "memberIds": [bob.id]}))[
        "createGroup"
    ]["id"]
    for n in range(10):
        message = (await bob.client(SEND, input={"conversationId": group, "body": f"m{n}"}))[
            "sendMessage"
        ]["id"]
        await asyncio.gather(
            bob.client.raw(
                'mutation($m: ID!) { editMessage(messageId: $m, body: "edited") { id } }',
                {"m": message},
            ),
            ann.client.raw(
                "mutation($m: ID!) { deleteMessage(messageId: $m) { id } }", {"m": message}
            ),
            ann.client.raw(
                'mutation($m: ID!) { addReaction(messageId: $m, emoji: "x") { id } }',
                {"m": message},
            ),
        )
        node = (
            await ann.client(
                "query($m: ID!) { node(id: $m) "
                "{ ... on Message { body deletedAt reactions { emoji } } } }",
                m=message,
            )
        )["node"]
        assert node == {"body": None, "deletedAt": node["deletedAt"], "reactions": []}
        assert node["deletedAt"] is not None
