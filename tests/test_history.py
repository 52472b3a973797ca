"""History paging, jumping to a message, node lookup and search, over HTTP against a server."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.client import NewUser, User, unique
from tests.operations import (
    CONVERSATIONS,
    DELETE_MESSAGE,
    PUBLIC_GROUPS,
    create_group,
    made_up_id,
    opaque,
    open_direct,
    send,
)

CONNECTION = """
  edges { cursor node { id seq body } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
"""
MESSAGES = (
    "query History($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {"
    " messages(conversationId: $id, first: $first, after: $after, last: $last, before: $before)"
    " {" + CONNECTION + "} }"
)
CONVERSATION_MESSAGES = (
    "query History($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {"
    " conversation(id: $id) {"
    " messages(first: $first, after: $after, last: $last, before: $before) {" + CONNECTION + "} } }"
)
CONTEXT = (
    "query Context($id: ID!, $before: Int, $after: Int) {"
    " messageContext(messageId: $id, before: $before, after: $after) {" + CONNECTION + "} }"
)
SEARCH = (
    "query Search($query: String!, $in: ID, $first: Int, $after: String) {"
    " searchMessages(query: $query, conversationId: $in, first: $first, after: $after) {"
    + CONNECTION
    + "} }"
)
NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename id
    ... on User { username }
    ... on Group { title }
    ... on DirectConversation { peer { id } }
    ... on Message { body }
  }
}
"""
MEMBERS = (
    "query M($id: ID!, $after: String) "
    "{ conversation(id: $id) { members(after: $after) { edges { cursor } } } }"
)


async def chat(new_user: NewUser, count: int) -> tuple[User, User, str, list[dict[str, Any]]]:
    """Two users and a direct conversation with ``count`` messages m0, m1, …"""
    ann, bob = await new_user(), await new_user()
    direct = await open_direct(ann, bob)
    sent = []
    for i in range(count):
        author = ann if i % 2 == 0 else bob
        sent.append(await send(author, direct, f"m{i}"))
    return ann, bob, direct, sent


async def page(user: User, conversation_id: str, **args: Any) -> dict[str, Any]:
    return dict((await user.client(MESSAGES, id=conversation_id, **args))["messages"])


def bodies(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["body"] for edge in connection["edges"]]


async def test_last_n_gives_the_newest_oldest_first(new_user: NewUser) -> None:
    # given
    ann, bob, direct, sent = await chat(new_user, 12)
    # when
    root = await page(ann, direct, last=5)
    nested = (await bob.client(CONVERSATION_MESSAGES, id=direct, last=5))["conversation"]
    # then
    assert bodies(root) == ["m7", "m8", "m9", "m10", "m11"]
    assert nested["messages"] == root
    info = root["pageInfo"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (True, False)
    assert (info["startCursor"], info["endCursor"]) == (
        root["edges"][0]["cursor"],
        root["edges"][-1]["cursor"],
    )
    assert [e["node"]["seq"] for e in root["edges"]] == [m["seq"] for m in sent[7:]]
    everything = await page(ann, direct)
    assert bodies(everything) == [f"m{i}" for i in range(12)]
    assert everything["pageInfo"]["hasPreviousPage"] is False
    oldest = await page(ann, direct, first=3)
    assert bodies(oldest) == ["m0", "m1", "m2"] and oldest["pageInfo"]["hasNextPage"] is True


async def test_paging_back_and_forth_visits_every_message_once(new_user: NewUser) -> None:
    # given
    ann, _, direct, sent = await chat(new_user, 23)
    expected = [m["body"] for m in sent]
    # when: backwards with last/before
    backwards: list[str] = []
    connection = await page(ann, direct, last=5)
    while True:
        backwards = bodies(connection) + backwards
        if not connection["pageInfo"]["hasPreviousPage"]:
            break
        connection = await page(ann, direct, last=5, before=connection["pageInfo"]["startCursor"])
    # when: forwards with first/after
    forwards: list[str] = []
    connection = await page(ann, direct, first=5)
    while True:
        forwards += bodies(connection)
        if not connection["pageInfo"]["hasNextPage"]:
            break
        connection = await page(ann, direct, first=5, after=connection["pageInfo"]["endCursor"])
    # then
    assert backwards == expected
    assert forwards == expected


async def test_cursors_stay_valid_while_messages_arrive(new_user: NewUser) -> None:
    # given
    ann, bob, direct, sent = await chat(new_user, 10)
    late = [f"late {i}" for i in range(18)]
    # when: each page is read while more messages are being sent
    forwards: list[int] = []
    after = None
    while True:
        batch, late = late[:3], late[3:]
        connection, *_ = await asyncio.gather(
            page(ann, direct, first=4, after=after),
            *(send(bob, direct, body) for body in batch),
        )
        forwards += [e["node"]["seq"] for e in connection["edges"]]
        after = connection["pageInfo"]["endCursor"] or after
        if not batch and not connection["pageInfo"]["hasNextPage"]:
            break
    # then: every message once, in order, the late ones included
    everything = await page(ann, direct, first=100)
    assert forwards == [e["node"]["seq"] for e in everything["edges"]]
    assert len(forwards) == 28
    # when: paging backwards from the newest while still more arrive
    connection = await page(ann, direct, last=4)
    newest = connection["edges"][-1]["node"]["seq"]
    backwards = [e["node"]["seq"] for e in connection["edges"]]
    extra = iter(range(100))
    while connection["pageInfo"]["hasPreviousPage"]:
        connection, _ = await asyncio.gather(
            page(ann, direct, last=4, before=connection["pageInfo"]["startCursor"]),
            send(ann, direct, f"extra {next(extra)}"),
        )
        backwards = [e["node"]["seq"] for e in connection["edges"]] + backwards
    # then
    assert backwards == [s for s in forwards if s <= newest] == forwards
    assert backwards[0] == sent[0]["seq"]


async def test_page_sizes_are_checked(new_user: NewUser) -> None:
    # given
    ann, bob, direct, _ = await chat(new_user, 3)
    bad = [
        {"first": 101},
        {"last": 101},
        {"first": -1},
        {"last": -1},
        {"first": 2, "last": 2},
    ]
    # when / then
    for args in bad:
        for query in (MESSAGES, CONVERSATION_MESSAGES):
            error = await bob.client.error(query, id=direct, **args)
            assert error.code == "BAD_USER_INPUT", args
    assert bodies(await page(ann, direct, first=100)) == ["m0", "m1", "m2"]
    assert bodies(await page(ann, direct, last=100)) == ["m0", "m1", "m2"]
    assert bodies(await page(ann, direct, first=0)) == []


async def test_bad_cursors_are_bad_user_input(new_user: NewUser) -> None:
    # given: cursors that are no cursors, and forged ones of the wrong shape
    ann, _, direct, _ = await chat(new_user, 3)
    common = ["garbage", "%%%", "☃", '["x"]', "[null]", '{"seq": 1}', "[99999999999999999999999]"]
    at = "2024-01-01T00:00:00+00:00"
    connections = {
        "messages/after": (MESSAGES, "after", ["[1, 2]"]),
        "messages/before": (MESSAGES, "before", ["[1, 2]"]),
        "searchMessages": (SEARCH, "after", ["[1, 2]"]),
        "members": (MEMBERS, "after", ["[1, 2]"]),
        "conversations": (
            CONVERSATIONS,
            "after",
            ['["not a time", 1]', f'["{at}", "x"]', '["2024-01-01T00:00:00", 1]'],
        ),
        "publicGroups": (PUBLIC_GROUPS, "after", ['["a", "x"]', '["a", null]']),
    }
    # when
    codes = {}
    for name, (query, argument, own) in connections.items():
        for text in common + own:
            cursor = opaque(text) if text[0] in "[{" else text
            result = await ann.client.raw(query, {"id": direct, "query": "m", argument: cursor})
            error = (result.get("errors") or [{}])[0]
            codes[name, text] = error.get("extensions", {}).get("code")
    # then
    wrong = sorted(f"{key}: {code}" for key, code in codes.items() if code != "BAD_USER_INPUT")
    assert not wrong, "\n".join(wrong)


async def test_message_context_surrounds_the_target(new_user: NewUser) -> None:
    # given
    ann, bob, direct, sent = await chat(new_user, 20)
    # when
    around = (await bob.client(CONTEXT, id=sent[10]["id"], before=3, after=2))["messageContext"]
    # then
    assert bodies(around) == ["m7", "m8", "m9", "m10", "m11", "m12"]
    info = around["pageInfo"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (True, True)
    older = await page(bob, direct, last=3, before=info["startCursor"])
    newer = await page(bob, direct, first=2, after=info["endCursor"])
    assert (bodies(older), bodies(newer)) == (["m4", "m5", "m6"], ["m13", "m14"])
    # then: at either end of the history
    start = (await ann.client(CONTEXT, id=sent[1]["id"], before=5, after=1))["messageContext"]
    assert bodies(start) == ["m0", "m1", "m2"]
    assert (start["pageInfo"]["hasPreviousPage"], start["pageInfo"]["hasNextPage"]) == (False, True)
    end = (await ann.client(CONTEXT, id=sent[19]["id"], before=1, after=5))["messageContext"]
    assert bodies(end) == ["m18", "m19"]
    assert (end["pageInfo"]["hasPreviousPage"], end["pageInfo"]["hasNextPage"]) == (True, False)
    alone = (await ann.client(CONTEXT, id=sent[5]["id"], before=0, after=0))["messageContext"]
    assert bodies(alone) == ["m5"]
    for args in ({"before": 101}, {"after": 101}, {"before": -1}, {"after": -1}):
        error = await ann.client.error(CONTEXT, id=sent[5]["id"], **args)
        assert error.code == "BAD_USER_INPUT", args
    outsider = await new_user()
    assert (await outsider.client.error(CONTEXT, id=sent[5]["id"])).code == "NOT_FOUND"


async def test_node_finds_what_the_viewer_may_see(new_user: NewUser) -> None:
    # given
    ann, bob, direct, sent = await chat(new_user, 1)
    title = unique("Private ")
    group, _ = await create_group(ann, title=title)
    secret = (await send(ann, group, "secret"))["id"]
    outsider = await new_user()
    # when / then: members see everything
    lookups = {
        bob.id: {"__typename": "User", "id": bob.id, "username": bob.username},
        group: {"__typename": "Group", "id": group, "title": title},
        direct: {"__typename": "DirectConversation", "id": direct, "peer": {"id": bob.id}},
        secret: {"__typename": "Message", "id": secret, "body": "secret"},
        sent[0]["id"]: {"__typename": "Message", "id": sent[0]["id"], "body": "m0"},
    }
    for node_id, expected in lookups.items():
        assert (await ann.client(NODE, id=node_id))["node"] == expected
    # then: others see users, and nothing of conversations they are not in
    assert (await outsider.client(NODE, id=ann.id))["node"]["username"] == ann.username
    for hidden in (group, direct, secret, sent[0]["id"], made_up_id("Message")):
        assert (await outsider.client(NODE, id=hidden))["node"] is None, hidden
    assert (await bob.client(NODE, id=secret))["node"] is None
    assert (await bob.client(NODE, id=made_up_id("User")))["node"] is None


async def test_search_finds_substrings_in_the_viewers_conversations_only(
    new_user: NewUser,
) -> None:
    # given: a word in Ann's chats, in a group she is not in, and in a deleted message
    ann, bob, direct, _ = await chat(new_user, 2)
    word = unique("zebra")
    group, _ = await create_group(ann, title="Zoo")
    in_direct = await send(bob, direct, f"a {word.upper()} crossing")
    in_group = await send(ann, group, f"{word}!")
    deleted = await send(ann, group, f"oops {word}")
    await ann.client(DELETE_MESSAGE, id=deleted["id"])
    cy = await new_user()
    hidden, _ = await create_group(cy, title="Hidden")
    await send(cy, hidden, f"cy's {word}")
    # when: a case-insensitive substring from the middle of the word
    found = (await ann.client(SEARCH, query=word[3:9].upper()))["searchMessages"]
    # then
    ids = {e["node"]["id"] for e in found["edges"]}
    assert ids == {in_direct["id"], in_group["id"]}
    only_direct = (await ann.client(SEARCH, query=word, **{"in": direct}))["searchMessages"]
    assert bodies(only_direct) == [f"a {word.upper()} crossing"]
    assert bodies((await bob.client(SEARCH, query=word))["searchMessages"]) == bodies(only_direct)
    assert bodies((await cy.client(SEARCH, query=word))["searchMessages"]) == [f"cy's {word}"]
    foreign = await cy.client.raw(SEARCH, {"query": word, "in": direct})
    assert word not in str(foreign)
    # then: paging one result at a time visits both
    first = (await ann.client(SEARCH, query=word, first=1))["searchMessages"]
    after = first["pageInfo"]["endCursor"]
    rest = (await ann.client(SEARCH, query=word, first=1, after=after))["searchMessages"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert {*bodies(first), *bodies(rest)} == {f"a {word.upper()} crossing", f"{word}!"}
    assert rest["pageInfo"]["hasNextPage"] is False
    assert (await ann.client.error(SEARCH, query="   ")).code == "BAD_USER_INPUT"


async def test_search_takes_words_as_written(new_user: NewUser) -> None:
    # given
    ann, _, direct, _ = await chat(new_user, 0)
    tag = unique("t")
    texts = [f"{tag} Straße", f"{tag} ÉCOLE", f"{tag} 100% sure", f"{tag} 1000 sure", f"{tag} a_b"]
    for text in texts:
        await send(ann, direct, text)
    # when / then: a query matches its own text, and % and _ are no wildcards
    expected = {"Straße": [texts[0]], "ÉCOLE": [texts[1]], "100%": [texts[2]], "a_b": [texts[4]]}
    found = {
        query: bodies((await ann.client(SEARCH, query=query, **{"in": direct}))["searchMessages"])
        for query in expected
    }
    assert found == expected
