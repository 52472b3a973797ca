"""Groups, direct conversations, members and roles, over HTTP against a real server."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.client import Client, NewUser, User, unique
from tests.operations import (
    ADD_MEMBERS,
    CONVERSATION,
    CONVERSATIONS,
    CREATE_GROUP,
    GROUP_FIELDS,
    HISTORY,
    OPEN_DIRECT,
    PUBLIC_GROUPS,
    REMOVE_MEMBER,
    SEND,
    SET_ROLE,
    UPDATE_GROUP,
    conversation,
    create_group,
    history,
    made_up_id,
    opaque,
    open_direct,
    send,
)

JOIN_GROUP = "mutation Join($id: ID!) { joinGroup(groupId: $id) { " + GROUP_FIELDS + " } }"
LEAVE = "mutation Leave($id: ID!) { leaveConversation(conversationId: $id) }"
NODE = "query Node($id: ID!) { node(id: $id) { id } }"
GROUPS = "query { groups(first: 100) { edges { node { __typename id } } } }"


async def roles(viewer: User, conversation_id: str) -> dict[str, str]:
    edges = (await conversation(viewer, conversation_id))["members"]["edges"]
    return {e["node"]["user"]["id"]: e["node"]["role"] for e in edges}


async def last_seq(viewer: User, conversation_id: str) -> int:
    return int((await conversation(viewer, conversation_id))["lastSeq"])


async def test_create_group_makes_the_creator_owner(new_user: NewUser) -> None:
    # given
    owner, ann, bob = await new_user("Olga"), await new_user("Ann"), await new_user("Bob")
    # when: the creator and a duplicate are in memberIds too
    data = await owner.client(
        CREATE_GROUP,
        input={"title": "  Book club ", "memberIds": [ann.id, bob.id, ann.id, owner.id]},
    )
    # then
    group = data["createGroup"]
    assert group["title"] == "Book club"
    assert group["isPublic"] is False
    assert (group["viewerRole"], group["memberCount"]) == ("OWNER", 3)
    assert await roles(ann, group["id"]) == {owner.id: "OWNER", ann.id: "MEMBER", bob.id: "MEMBER"}
    assert (await conversation(ann, group["id"]))["viewerRole"] == "MEMBER"
    messages = await history(bob, group["id"])
    assert [m["kind"] for m in messages] == ["SYSTEM"]
    assert messages[0]["author"] is None and "Book club" in messages[0]["body"]
    assert group["lastSeq"] >= messages[0]["seq"] >= 1


async def test_create_group_validates_its_input(client: Client, new_user: NewUser) -> None:
    owner = await new_user()
    titles = ["", "   ", "t" * 101, "two\nlines", "bell\x07"]
    descriptions = ["d" * 1001, "nul\x00"]
    bad_inputs = [{"title": t} for t in titles] + [
        {"title": "ok", "description": d} for d in descriptions
    ]
    for bad in bad_inputs:
        error = await owner.client.error(CREATE_GROUP, input=bad)
        assert error.code == "BAD_USER_INPUT", bad
    too_many = [opaque(f"User:{n}") for n in range(1, 102)]
    error = await owner.client.error(CREATE_GROUP, input={"title": "ok", "memberIds": too_many})
    assert error.code == "BAD_USER_INPUT"
    unknown = await owner.client.error(
        CREATE_GROUP, input={"title": "ok", "memberIds": [made_up_id("User")]}
    )
    assert unknown.code == "NOT_FOUND"
    anonymous = await client.error(CREATE_GROUP, input={"title": "ok"})
    assert anonymous.code == "UNAUTHENTICATED"
    # then: none of the refused attempts left a group behind
    assert (await owner.client(GROUPS))["groups"]["edges"] == []


async def test_update_group_by_owner_and_admin(new_user: NewUser) -> None:
    # given
    owner, admin, member, outsider = [await new_user() for _ in range(4)]
    gid, _ = await create_group(owner, admin, member, title="Old name")
    await owner.client(SET_ROLE, id=gid, userId=admin.id, role="ADMIN")
    before = await last_seq(owner, gid)
    for user, title, code in [(member, "x", "FORBIDDEN"), (outsider, "x", "NOT_FOUND")]:
        assert (
            await user.client.error(UPDATE_GROUP, input={"groupId": gid, "title": title})
        ).code == code
    no_title = await owner.client.error(UPDATE_GROUP, input={"groupId": gid, "title": None})
    assert no_title.code == "BAD_USER_INPUT"
    assert await last_seq(owner, gid) == before
    # when: an admin renames the group
    renamed = (await admin.client(UPDATE_GROUP, input={"groupId": gid, "title": "New"}))[
        "updateGroup"
    ]
    # then: a SYSTEM message tells everyone
    assert (renamed["title"], renamed["lastSeq"] > before) == ("New", True)
    newest = (await conversation(member, gid))["lastMessage"]
    assert (newest["kind"], newest["author"], newest["seq"]) == ("SYSTEM", None, renamed["lastSeq"])
    assert "Old name" in newest["body"] and "New" in newest["body"]
    # when: the owner sets, then clears the description
    described = await owner.client(UPDATE_GROUP, input={"groupId": gid, "description": "Books"})
    assert described["updateGroup"]["description"] == "Books"
    cleared = await owner.client(UPDATE_GROUP, input={"groupId": gid, "description": None})
    assert cleared["updateGroup"]["description"] is None
    # then: an update that changes nothing takes no seq
    same = await owner.client(UPDATE_GROUP, input={"groupId": gid, "title": "New"})
    assert same["updateGroup"]["lastSeq"] == cleared["updateGroup"]["lastSeq"]


async def test_join_public_group_is_idempotent_and_private_is_not_found(new_user: NewUser) -> None:
    # given
    owner, joiner = await new_user(), await new_user("Jo")
    public, _ = await create_group(owner, public=True)
    private, _ = await create_group(owner)
    # when
    joined = (await joiner.client(JOIN_GROUP, id=public))["joinGroup"]
    again = (await joiner.client(JOIN_GROUP, id=public))["joinGroup"]
    # then
    assert (joined["viewerRole"], joined["memberCount"]) == ("MEMBER", 2)
    assert (again["memberCount"], again["lastSeq"]) == (2, joined["lastSeq"])
    newest = (await conversation(owner, public))["lastMessage"]
    assert newest["kind"] == "SYSTEM" and "Jo" in newest["body"]
    error = await joiner.client.error(JOIN_GROUP, id=private)
    assert error.code == "NOT_FOUND"
    assert (await conversation(owner, private))["memberCount"] == 1


async def test_concurrent_joins_add_the_member_once(new_user: NewUser) -> None:
    # given
    owner, joiner = await new_user(), await new_user()
    group, _ = await create_group(owner, public=True)
    # when
    results = await asyncio.gather(
        *(joiner.client.raw(JOIN_GROUP, {"id": group}) for _ in range(5))
    )
    # then
    assert [r.get("errors") for r in results] == [None] * 5
    assert await roles(owner, group) == {owner.id: "OWNER", joiner.id: "MEMBER"}
    joins = [m for m in await history(owner, group) if m["body"].endswith("joined")]
    assert len(joins) == 1


async def test_public_groups_search_and_paging(new_user: NewUser) -> None:
    # given: five public groups and one private one share a word
    owner, searcher = await new_user(), await new_user()
    word = unique("w")
    titles = [f"{letter} {word.upper()} club" for letter in "EDCBA"]
    for title in titles:
        await create_group(owner, public=True, title=title)
    await create_group(owner, title=f"F {word} secret")
    # when: paging two at a time through a case-insensitive substring search
    found: list[str] = []
    after = None
    for _ in range(10):
        data = await searcher.client(PUBLIC_GROUPS, search=word[2:], first=2, after=after)
        page = data["publicGroups"]
        found += [e["node"]["title"] for e in page["edges"]]
        assert all(e["node"]["isPublic"] for e in page["edges"])
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then: each public group once, by title, and never the private one
    assert found == sorted(titles)


async def test_open_direct_conversation_is_one_per_pair(new_user: NewUser) -> None:
    # given
    ann, bob = await new_user(), await new_user()
    # when
    first = (await ann.client(OPEN_DIRECT, userId=bob.id))["openDirectConversation"]
    again = (await ann.client(OPEN_DIRECT, userId=bob.id))["openDirectConversation"]
    other_side = (await bob.client(OPEN_DIRECT, userId=ann.id))["openDirectConversation"]
    # then
    assert first["id"] == again["id"] == other_side["id"]
    assert first["lastSeq"] == 0
    assert first["peer"] == {"id": bob.id, "username": bob.username}
    assert other_side["peer"] == {"id": ann.id, "username": ann.username}
    assert first["members"]["totalCount"] == 2
    assert {e["node"]["user"]["id"] for e in first["members"]["edges"]} == {ann.id, bob.id}
    assert (await ann.client.error(OPEN_DIRECT, userId=ann.id)).code == "BAD_USER_INPUT"
    assert (await ann.client.error(OPEN_DIRECT, userId=made_up_id("User"))).code == "NOT_FOUND"
    assert (await ann.client.error(LEAVE, id=first["id"])).code == "BAD_USER_INPUT"
    error = await ann.client.error(ADD_MEMBERS, id=first["id"], userIds=[(await new_user()).id])
    assert error.code == "BAD_USER_INPUT"


async def test_concurrent_opens_from_both_sides_give_one_conversation(new_user: NewUser) -> None:
    # given
    ann, bob = await new_user(), await new_user()
    # when
    results = await asyncio.gather(
        *(ann.client(OPEN_DIRECT, userId=bob.id) for _ in range(4)),
        *(bob.client(OPEN_DIRECT, userId=ann.id) for _ in range(4)),
    )
    # then
    assert len({r["openDirectConversation"]["id"] for r in results}) == 1
    listed = (await bob.client(CONVERSATIONS, first=100))["conversations"]["edges"]
    assert [e["node"]["__typename"] for e in listed] == ["DirectConversation"]


async def test_member_management_permissions(new_user: NewUser) -> None:
    # given
    owner, admin, admin2, m1, m2, stranger, newcomer = [await new_user() for _ in range(7)]
    gid, _ = await create_group(owner, admin, admin2, m1, m2)
    for who in (admin, admin2):
        await owner.client(SET_ROLE, id=gid, userId=who.id, role="ADMIN")
    add, remove = {"userIds": [newcomer.id]}, REMOVE_MEMBER
    refusals: list[tuple[User, str, dict[str, Any], str]] = [
        (m1, ADD_MEMBERS, add, "FORBIDDEN"),
        (stranger, ADD_MEMBERS, add, "NOT_FOUND"),
        (owner, ADD_MEMBERS, {"userIds": []}, "BAD_USER_INPUT"),
        (m1, remove, {"userId": m2.id}, "FORBIDDEN"),
        (admin, remove, {"userId": admin2.id}, "FORBIDDEN"),
        (admin, remove, {"userId": owner.id}, "FORBIDDEN"),
        (stranger, remove, {"userId": m1.id}, "NOT_FOUND"),
        (owner, remove, {"userId": stranger.id}, "NOT_FOUND"),
        (admin, remove, {"userId": admin.id}, "BAD_USER_INPUT"),
        (m1, SET_ROLE, {"userId": m2.id, "role": "ADMIN"}, "FORBIDDEN"),
        (admin, SET_ROLE, {"userId": owner.id, "role": "MEMBER"}, "FORBIDDEN"),
        (admin, SET_ROLE, {"userId": admin2.id, "role": "MEMBER"}, "FORBIDDEN"),
        (admin, SET_ROLE, {"userId": m1.id, "role": "OWNER"}, "FORBIDDEN"),
        (stranger, SET_ROLE, {"userId": m1.id, "role": "ADMIN"}, "NOT_FOUND"),
        (owner, SET_ROLE, {"userId": owner.id, "role": "ADMIN"}, "BAD_USER_INPUT"),
        (owner, SET_ROLE, {"userId": stranger.id, "role": "ADMIN"}, "NOT_FOUND"),
    ]
    seq = await last_seq(owner, gid)
    # when / then: every refusal has its code, and changes nothing
    codes = [(await actor.client.error(q, id=gid, **v)).code for actor, q, v, _ in refusals]
    assert codes == [code for *_, code in refusals]
    assert await last_seq(owner, gid) == seq
    assert set((await roles(m1, gid)).values()) == {"OWNER", "ADMIN", "MEMBER"}
    # when / then: what owners and admins may do
    assert (await admin.client(ADD_MEMBERS, id=gid, **add))["addMembers"]["memberCount"] == 6
    again = (await owner.client(ADD_MEMBERS, id=gid, **add))["addMembers"]
    assert (again["memberCount"], again["lastSeq"]) == (6, await last_seq(owner, gid))
    promoted = await admin.client(SET_ROLE, id=gid, userId=m1.id, role="ADMIN")
    assert promoted["setMemberRole"] == {"role": "ADMIN", "user": {"id": m1.id}}
    await owner.client(SET_ROLE, id=gid, userId=admin2.id, role="MEMBER")
    assert (await admin.client(REMOVE_MEMBER, id=gid, userId=admin2.id))["removeMember"][
        "memberCount"
    ] == 5
    assert (await owner.client(REMOVE_MEMBER, id=gid, userId=m1.id))["removeMember"][
        "memberCount"
    ] == 4
    assert await roles(m2, gid) == {
        owner.id: "OWNER",
        admin.id: "ADMIN",
        m2.id: "MEMBER",
        newcomer.id: "MEMBER",
    }


async def test_ownership_transfer(new_user: NewUser) -> None:
    # given
    owner, heir = await new_user(), await new_user()
    group, _ = await create_group(owner, heir)
    # when
    data = await owner.client(SET_ROLE, id=group, userId=heir.id, role="OWNER")
    # then: one owner; the old one steps down to admin and answers to the new one
    assert data["setMemberRole"]["role"] == "OWNER"
    assert await roles(owner, group) == {owner.id: "ADMIN", heir.id: "OWNER"}
    error = await owner.client.error(SET_ROLE, id=group, userId=heir.id, role="MEMBER")
    assert error.code == "FORBIDDEN"
    removed = await heir.client(REMOVE_MEMBER, id=group, userId=owner.id)
    assert removed["removeMember"]["memberCount"] == 1


async def test_concurrent_ownership_transfers_leave_one_owner(new_user: NewUser) -> None:
    # given
    owner, heirs = await new_user(), [await new_user() for _ in range(3)]
    gid, _ = await create_group(owner, *heirs)
    # when
    results = await asyncio.gather(
        *(owner.client.raw(SET_ROLE, {"id": gid, "userId": h.id, "role": "OWNER"}) for h in heirs)
    )
    codes = [r["errors"][0]["extensions"]["code"] if r.get("errors") else "OK" for r in results]
    # then
    assert sorted(codes) == ["FORBIDDEN", "FORBIDDEN", "OK"]
    assert sorted((await roles(owner, gid)).values()) == ["ADMIN", "MEMBER", "MEMBER", "OWNER"]


async def test_leaving_owner_hands_over_to_longest_standing_admin_else_member(
    new_user: NewUser,
) -> None:
    # given: m1 joined first but is no admin; a1 is the longest-standing admin
    owner, m1, a1 = await new_user(), await new_user(), await new_user()
    gid, _ = await create_group(owner, m1, a1)
    a2 = await new_user()
    await owner.client(ADD_MEMBERS, id=gid, userIds=[a2.id])
    for admin in (a2, a1):
        await owner.client(SET_ROLE, id=gid, userId=admin.id, role="ADMIN")
    # when / then
    assert (await owner.client(LEAVE, id=gid))["leaveConversation"] is True
    assert await roles(m1, gid) == {m1.id: "MEMBER", a1.id: "OWNER", a2.id: "ADMIN"}
    # when / then: with the admins gone, the longest-standing member takes over
    await a2.client(LEAVE, id=gid)
    m3 = await new_user()
    await a1.client(ADD_MEMBERS, id=gid, userIds=[m3.id])
    await a1.client(LEAVE, id=gid)
    assert await roles(m3, gid) == {m1.id: "OWNER", m3.id: "MEMBER"}


async def test_membership_changes_write_system_messages_and_advance_last_seq(
    new_user: NewUser,
) -> None:
    # given
    owner, ann, bob = await new_user("Olga"), await new_user("Ann"), await new_user("Bob")
    gid, _ = await create_group(owner, ann)
    changes: list[tuple[User, str, dict[str, Any], str]] = [
        (owner, ADD_MEMBERS, {"userIds": [bob.id]}, "Bob"),
        (owner, SET_ROLE, {"userId": ann.id, "role": "ADMIN"}, "Ann"),
        (ann, REMOVE_MEMBER, {"userId": bob.id}, "Bob"),
        (ann, LEAVE, {}, "Ann"),
    ]
    for actor, mutation, variables, name in changes:
        seq = await last_seq(owner, gid)
        # when
        await actor.client(mutation, id=gid, **variables)
        # then
        seen = await conversation(owner, gid)
        newest = seen["lastMessage"]
        assert seen["lastSeq"] > seq, mutation
        assert (newest["kind"], newest["author"]) == ("SYSTEM", None)
        assert newest["seq"] > seq and name in newest["body"], newest
    kinds = [m["kind"] for m in await history(owner, gid)]
    assert kinds == ["SYSTEM"] * 5


async def test_removed_and_departed_members_lose_access(new_user: NewUser) -> None:
    # given
    owner, removed, departed = await new_user(), await new_user(), await new_user()
    group, _ = await create_group(owner, removed, departed)
    await send(owner, group, "before they went")
    # when
    await owner.client(REMOVE_MEMBER, id=group, userId=removed.id)
    await departed.client(LEAVE, id=group)
    # then
    for user in (removed, departed):
        assert (await user.client.error(CONVERSATION, id=group)).code == "NOT_FOUND"
        assert (await user.client.error(HISTORY, id=group)).code == "NOT_FOUND"
        sending = await user.client.error(SEND, input={"conversationId": group, "body": "hi"})
        assert sending.code == "NOT_FOUND"
        assert (await user.client.error(LEAVE, id=group)).code == "NOT_FOUND"
        assert (await user.client(NODE, id=group))["node"] is None
        assert (await user.client(CONVERSATIONS, first=100))["conversations"]["edges"] == []
    assert set(await roles(owner, group)) == {owner.id}


async def test_conversations_list_newest_activity_first_and_pages(new_user: NewUser) -> None:
    # given: four groups (one of them someone else's), a direct conversation, a group the
    # viewer is not in; then the oldest group gets a message
    viewer, peer = await new_user(), await new_user()
    ids = [(await create_group(viewer))[0] for _ in range(3)]
    ids.append((await create_group(peer, viewer))[0])
    await create_group(peer, public=True)
    ids.append(await open_direct(viewer, peer))
    await send(peer, ids[-1], "hello")
    await send(viewer, ids[0], "bump")
    # when
    whole = (await viewer.client(CONVERSATIONS, first=100))["conversations"]
    paged: list[str] = []
    after = None
    for _ in range(10):
        page = (await viewer.client(CONVERSATIONS, first=2, after=after))["conversations"]
        paged += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # then
    listed = [e["node"]["id"] for e in whole["edges"]]
    assert listed == [ids[0], ids[4], ids[3], ids[2], ids[1]]
    times = [e["node"]["lastActivityAt"] for e in whole["edges"]]
    assert times == sorted(times, reverse=True)
    assert paged == listed
    assert whole["pageInfo"]["hasNextPage"] is False
    # then: groups lists the groups alone, in the same order
    edges = (await viewer.client(GROUPS))["groups"]["edges"]
    assert [e["node"]["id"] for e in edges] == [ids[0], ids[3], ids[2], ids[1]]
    assert {e["node"]["__typename"] for e in edges} == {"Group"}
