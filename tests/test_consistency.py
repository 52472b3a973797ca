"""What the API returns agrees with itself: time with seq, ids with their objects,
cursors with their connections, and a public group with an owner."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from tests.client import NewUser, User
from tests.operations import SEND, create_group, made_up_id, open_direct, send

TIMELINE = """
query T($id: ID!) {
  conversation(id: $id) {
    lastActivityAt lastSeq
    lastMessage { seq createdAt }
    messages(last: 100) { edges { node { seq createdAt } } }
  }
}
"""
CONVERSATIONS = """
query { conversations(first: 100) { edges { node { id lastActivityAt } } } }
"""
NODE = "query N($id: ID!) { node(id: $id) { __typename id } }"
CONVERSATION = "query C($id: ID!) { conversation(id: $id) { __typename id } }"
PAGE = """
query P($id: ID!, $before: String, $after: String, $last: Int, $first: Int) {
  messages(conversationId: $id, before: $before, after: $after, last: $last, first: $first) {
    edges { cursor node { seq } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
MEMBERS = """
query M($id: ID!, $after: String) {
  conversation(id: $id) {
    members(first: 1, after: $after) { edges { cursor } pageInfo { endCursor } }
  }
}
"""
CONVERSATION_PAGE = (
    "query C($after: String) { conversations(first: 1, after: $after) { edges { cursor } } }"
)
GROUPS_PAGE = "query G($after: String) { groups(first: 1, after: $after) { edges { cursor } } }"
TYPING = """
subscription T($id: ID!) { typing(conversationId: $id) { conversationId typing } }
"""
SET_TYPING = "mutation T($id: ID!) { setTyping(conversationId: $id, typing: true) }"
LEAVE = "mutation L($id: ID!) { leaveConversation(conversationId: $id) }"
JOIN = "mutation J($id: ID!) { joinGroup(groupId: $id) { id viewerRole viewerIsMember } }"
ADD = """
mutation A($c: ID!, $u: [ID!]!) { addMembers(conversationId: $c, userIds: $u) { memberCount } }
"""


def _retyped(global_id: str, type_name: str) -> str:
    """The same key under another type name: a well-formed id of the wrong type."""
    padded = global_id + "=" * (-len(global_id) % 4)
    key = base64.urlsafe_b64decode(padded).decode().partition(":")[2]
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode().rstrip("=")


async def _group(owner: User, *members: User, public: bool = False) -> str:
    return (await create_group(owner, *members, public=public))[0]


async def test_time_never_runs_against_seq_under_concurrent_sends(new_user: NewUser) -> None:
    # given a group of three
    ann, bob, cy = await new_user(), await new_user(), await new_user()
    group = await _group(ann, bob, cy)
    # when 30 messages are sent at once
    senders = [ann, bob, cy] * 10
    await asyncio.gather(*(send(user, group, f"m{n}") for n, user in enumerate(senders)))
    # then a higher seq never has an earlier time
    data = (await ann.client(TIMELINE, id=group))["conversation"]
    timeline = [edge["node"] for edge in data["messages"]["edges"]]
    assert [m["seq"] for m in timeline] == sorted(m["seq"] for m in timeline)
    times = [m["createdAt"] for m in timeline]
    assert times == sorted(times)
    # and the conversation's activity is that of its newest message
    assert data["lastMessage"] == timeline[-1]
    assert data["lastActivityAt"] == timeline[-1]["createdAt"]
    listed = {
        e["node"]["id"]: e["node"]["lastActivityAt"]
        for e in (await bob.client(CONVERSATIONS))["conversations"]["edges"]
    }
    assert listed[group] == data["lastActivityAt"]


async def test_an_id_of_the_wrong_type_answers_like_an_unknown_id(new_user: NewUser) -> None:
    # given a group and a direct conversation
    ann, bob = await new_user(), await new_user()
    group = await _group(ann, bob)
    direct = await open_direct(ann, bob)
    for right, wrong in (
        (group, _retyped(group, "DirectConversation")),
        (direct, _retyped(direct, "Group")),
    ):
        # when each is asked for under the other type's name
        # then node finds nothing, and everything else says NOT_FOUND
        assert (await ann.client(NODE, id=right))["node"]["id"] == right
        assert (await ann.client(NODE, id=wrong))["node"] is None
        assert (await ann.client.error(CONVERSATION, id=wrong)).code == "NOT_FOUND"
        sent = await ann.client.error(SEND, input={"conversationId": wrong, "body": "hi"})
        assert sent.code == "NOT_FOUND"
        assert (await ann.client.error(PAGE, id=wrong, last=5)).code == "NOT_FOUND"
    # and a user or message id is no conversation id either
    as_conversation = await ann.client.error(SEND, input={"conversationId": ann.id, "body": "hi"})
    assert as_conversation.code == "NOT_FOUND"


async def test_ids_are_canonical_and_signals_echo_them(server_url: str, new_user: NewUser) -> None:
    from tests.ws import open_socket

    # given a group
    ann, bob = await new_user(), await new_user()
    group = await _group(ann, bob)
    raw = base64.urlsafe_b64decode(group + "=" * (-len(group) % 4)).decode()
    type_name, key = raw.split(":")
    # when it is named any other way than its own id
    for other in (
        group + "==",
        base64.urlsafe_b64encode(f"{type_name}:0{key}".encode()).decode(),
        base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode() + "=",
    ):
        if other == group:
            continue
        # then that is not an id
        assert (await ann.client.error(CONVERSATION, id=other)).code == "BAD_USER_INPUT"
    assert (await ann.client(NODE, id=group))["node"]["id"] == group
    # and Bob typing there reaches Ann under the group's own id
    async with open_socket(server_url, ann.token) as socket:
        operation = await socket.subscribe(TYPING, {"id": group})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 15
        while True:
            await bob.client(SET_TYPING, id=group)
            try:
                event = (await socket.data(operation, 0.5))["typing"]
                break
            except TimeoutError:
                assert loop.time() < deadline
    assert event["conversationId"] == group


async def _page(user: User, **variables: Any) -> dict[str, Any]:
    return dict((await user.client(PAGE, **variables))["messages"])


async def test_a_cursor_only_pages_the_connection_that_issued_it(new_user: NewUser) -> None:
    # given two conversations with history
    ann, bob = await new_user(), await new_user()
    first, second = await _group(ann, bob), await _group(ann, bob)
    for group in (first, second):
        for n in range(3):
            await send(ann, group, f"m{n}")
    cursor = (await _page(ann, id=first, last=2))["pageInfo"]["startCursor"]
    # when a cursor of the first is used on the second
    for argument in ("before", "after"):
        error = await ann.client.error(PAGE, id=second, last=2, **{argument: cursor})
        # then it is refused
        assert error.code == "BAD_USER_INPUT"
    # and it still pages its own conversation
    older = await _page(ann, id=first, last=2, before=cursor)
    assert older["pageInfo"]["hasNextPage"] is True
    assert older["edges"]
    # and cursors of other connections are refused too
    members_cursor = (await ann.client(MEMBERS, id=first))["conversation"]["members"]["pageInfo"][
        "endCursor"
    ]
    assert (await ann.client.error(MEMBERS, id=second, after=members_cursor)).code == (
        "BAD_USER_INPUT"
    )
    assert (await ann.client.error(PAGE, id=first, before=members_cursor)).code == (
        "BAD_USER_INPUT"
    )
    listed = (await ann.client(CONVERSATION_PAGE))["conversations"]["edges"][0]["cursor"]
    assert (await ann.client.error(GROUPS_PAGE, after=listed)).code == "BAD_USER_INPUT"
    assert (await bob.client.error(CONVERSATION_PAGE, after=listed)).code == "BAD_USER_INPUT"


async def test_a_public_group_left_by_everyone_goes_to_the_next_to_join(
    new_user: NewUser,
) -> None:
    # given a public group whose only member, its owner, leaves
    ann, bob, cy = await new_user(), await new_user(), await new_user()
    group = await _group(ann, public=True)
    assert (await ann.client(LEAVE, id=group))["leaveConversation"] is True
    # when Bob joins it
    joined = (await bob.client(JOIN, id=group))["joinGroup"]
    # then Bob owns it and can manage it
    assert (joined["viewerRole"], joined["viewerIsMember"]) == ("OWNER", True)
    assert (await bob.client(ADD, c=group, u=[cy.id]))["addMembers"]["memberCount"] == 2
    # and whoever joins next is a plain member
    assert (await ann.client(JOIN, id=group))["joinGroup"]["viewerRole"] == "MEMBER"


SEARCH = """
query S($q: String!, $c: ID, $after: String) {
  searchMessages(query: $q, conversationId: $c, first: 1, after: $after) {
    edges { cursor node { id } }
    pageInfo { endCursor }
  }
}
"""
PUBLIC_SEARCH = """
query P($s: String, $after: String) {
  publicGroups(search: $s, first: 1, after: $after) { pageInfo { endCursor } }
}
"""
REPLY = """
mutation R($c: ID!, $r: ID!) {
  sendMessage(input: {conversationId: $c, body: "re", replyToId: $r}) { id }
}
"""


async def test_ids_of_other_types_answer_as_unknown_ids_do_everywhere(new_user: NewUser) -> None:
    # given a group with a message
    ann, bob = await new_user(), await new_user()
    group = await _group(ann, bob)
    message = (await send(ann, group, "findme here"))["id"]
    unknown_message = made_up_id("Message")
    # when ids of other types stand where a conversation or a message is meant
    # then they find what an unknown id finds
    for not_a_conversation in (ann.id, message):
        found = (await ann.client(SEARCH, q="findme", c=not_a_conversation))["searchMessages"]
        assert found["edges"] == []
    unknown = await ann.client.error(REPLY, c=group, r=unknown_message)
    other_type = await ann.client.error(REPLY, c=group, r=bob.id)
    assert (other_type.code, other_type.errors[0]["message"]) == (
        unknown.code,
        unknown.errors[0]["message"],
    )


async def test_search_cursors_page_only_the_search_that_gave_them(new_user: NewUser) -> None:
    # given two messages found by two searches
    ann = await new_user()
    group = await _group(ann, public=True)
    await _group(ann, public=True)
    for body in ("alpha one", "alpha two", "beta one", "beta two"):
        await send(ann, group, body)
    alpha = (await ann.client(SEARCH, q="alpha"))["searchMessages"]["pageInfo"]["endCursor"]
    # when a cursor of one search pages another
    # then it is refused, and it still pages its own
    assert (await ann.client.error(SEARCH, q="beta", after=alpha)).code == "BAD_USER_INPUT"
    assert (await ann.client.error(SEARCH, q="alpha", c=group, after=alpha)).code == (
        "BAD_USER_INPUT"
    )
    assert (await ann.client(SEARCH, q="alpha", after=alpha))["searchMessages"]["edges"]
    listed = (await ann.client(PUBLIC_SEARCH, s="Group"))["publicGroups"]["pageInfo"]
    assert (await ann.client.error(PUBLIC_SEARCH, s="other", after=listed["endCursor"])).code == (
        "BAD_USER_INPUT"
    )
