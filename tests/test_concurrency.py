"""Many clients writing to one conversation at once: seqs are unique and gap-free."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from tests.client import Client, NewUser, User
from tests.operations import (
    ADD_REACTION,
    DELETE_MESSAGE,
    EDIT_MESSAGE,
    REMOVE_MEMBER,
    SEND,
    conversation,
    create_group,
    history,
    send,
)

MESSAGE_NODE = (
    "query($id: ID!) { node(id: $id) { ... on Message { body deletedAt reactions { emoji } } } }"
)


async def test_concurrent_senders_never_share_or_skip_a_seq(
    server_url: str, new_user: NewUser
) -> None:
    # given five members of one group, each on a connection of its own
    senders: list[User] = [await new_user() for _ in range(5)]
    owner = senders[0]
    group, start = await create_group(owner, *senders[1:], title="busy")

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
    assert (await conversation(owner, group))["lastSeq"] == start + 200
    texts = [m for m in await history(owner, group) if m["kind"] == "TEXT"]
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
    group, start = await create_group(owner, title="retries")
    # when the same send arrives ten times at once
    sent = await asyncio.gather(
        *(send(owner, group, "only once", clientMessageId="retry-1") for _ in range(10))
    )
    # then all ten acknowledge the one stored message, which took the next seq and no other
    assert len({m["id"] for m in sent}) == 1
    messages = await history(owner, group)
    assert [m["body"] for m in messages if m["kind"] == "TEXT"] == ["only once"]
    last_seq = (await conversation(owner, group))["lastSeq"]
    assert last_seq == sent[0]["seq"] == start + 1


@pytest.mark.postgres
async def test_no_send_commits_after_the_senders_removal(new_user: NewUser) -> None:
    ann = await new_user()
    for _ in range(10):
        # given Carl in Ann's group
        carl = await new_user()
        group, _ = await create_group(ann, carl, title="race")
        # when Ann removes him while he sends
        await asyncio.gather(
            ann.client.raw(REMOVE_MEMBER, {"id": group, "userId": carl.id}),
            carl.client.raw(SEND, {"input": {"conversationId": group, "body": "last word"}}),
        )
        # then his message, if it was accepted, comes before the removal
        nodes = await history(ann, group)
        removal = next(n["seq"] for n in nodes if n["kind"] == "SYSTEM" and "removed" in n["body"])
        assert all(
            n["seq"] < removal for n in nodes if n["author"] and n["author"]["id"] == carl.id
        )


@pytest.mark.postgres
async def test_edit_and_reaction_racing_a_delete_leave_it_deleted(new_user: NewUser) -> None:
    ann, bob = await new_user(), await new_user()
    group, _ = await create_group(ann, bob, title="race")
    for n in range(10):
        message = (await send(bob, group, f"m{n}"))["id"]
        await asyncio.gather(
            bob.client.raw(EDIT_MESSAGE, {"id": message, "body": "edited"}),
            ann.client.raw(DELETE_MESSAGE, {"id": message}),
            ann.client.raw(ADD_REACTION, {"id": message, "emoji": "x"}),
        )
        node = (await ann.client(MESSAGE_NODE, id=message))["node"]
        assert node == {"body": None, "deletedAt": node["deletedAt"], "reactions": []}
        assert node["deletedAt"] is not None
