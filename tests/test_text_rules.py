"""Invisible and direction-changing text, length units and reaction keys, over HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tests.client import REGISTER, Client, GraphQLErrors, User, unique

NewUser = Callable[..., Awaitable[User]]

SEND = (
    "mutation Send($input: SendMessageInput!) { sendMessage(input: $input) { id seq kind body } }"
)
EDIT = (
    "mutation Edit($id: ID!, $body: String!) { editMessage(messageId: $id, body: $body) { body } }"
)
GROUP = "id title description lastSeq"
CREATE_GROUP = (
    "mutation Create($input: CreateGroupInput!) { createGroup(input: $input) { " + GROUP + " } }"
)
UPDATE_GROUP = (
    "mutation Update($input: UpdateGroupInput!) { updateGroup(input: $input) { " + GROUP + " } }"
)
JOIN_GROUP = "mutation Join($id: ID!) { joinGroup(groupId: $id) { id } }"
UPDATE_PROFILE = (
    "mutation Profile($input: UpdateProfileInput!) { updateProfile(input: $input) { displayName } }"
)
HISTORY = """
query History($id: ID!) {
  messages(conversationId: $id, last: 100) { edges { node { kind body } } }
}
"""
REACTIONS = "reactions { emoji count viewerHasReacted }"
ADD_REACTION = (
    "mutation React($id: ID!, $emoji: String!) "
    "{ addReaction(messageId: $id, emoji: $emoji) { " + REACTIONS + " } }"
)
REMOVE_REACTION = (
    "mutation Unreact($id: ID!, $emoji: String!) "
    "{ removeReaction(messageId: $id, emoji: $emoji) { " + REACTIONS + " } }"
)
MESSAGE_REACTIONS = (
    "query Node($id: ID!) { node(id: $id) { ... on Message { " + REACTIONS + " } } }"
)

# Bodies, names and titles a person sees nothing of.
INVISIBLE = [
    "\u200b",  # zero-width space
    "\u2060",  # word joiner
    "\ufeff",  # byte order mark
    "\u3164",  # Hangul filler
    "\u2800",  # braille pattern blank
    "\u115f\u1160",  # Hangul choseong and jungseong fillers
    "\u034f",  # combining grapheme joiner
    "\ufe0f",  # a variation selector alone
    "\u180e",  # Mongolian vowel separator
    "\u00ad",  # soft hyphen
    " \u200b\n\u200c\t\u200d ",  # white space and zero-width characters together
]
# Embeddings, overrides, isolates and marks that reorder the text around them.
BIDI_CONTROLS = [
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
]
# Visible text whose zero-width characters do a job: kept exactly.
WITH_JOINERS = [
    "👨\u200d👩\u200d👧",  # a family: one emoji of three joined by ZWJ
    "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian "I want", ZWNJ inside
    "❤\ufe0f\u200d🔥",  # heart on fire
    "I ❤️ it",
]


async def create_group(owner: User, *, public: bool = False) -> dict[str, Any]:
    data = await owner.client(CREATE_GROUP, input={"title": unique("G"), "isPublic": public})
    return dict(data["createGroup"])


async def bodies(user: User, conversation_id: str) -> list[tuple[str, str]]:
    data = await user.client(HISTORY, id=conversation_id)
    return [(e["node"]["kind"], e["node"]["body"]) for e in data["messages"]["edges"]]


async def register(client: Client, display_name: str) -> dict[str, Any]:
    data = await client(
        REGISTER,
        input={"username": unique(), "password": "s3cret-pass", "displayName": display_name},
    )
    return dict(data["register"]["user"])


def assert_bad_input(error: GraphQLErrors, field: str, value: str) -> None:
    extensions = error.errors[0].get("extensions", {})
    assert (extensions.get("code"), extensions.get("field")) == ("BAD_USER_INPUT", field), (
        ascii(value),
        error.errors,
    )


async def test_a_body_needs_a_visible_character_and_keeps_its_joiners(new_user: NewUser) -> None:
    # given
    ann = await new_user()
    group = (await create_group(ann))["id"]
    sent = (await ann.client(SEND, input={"conversationId": group, "body": "first"}))["sendMessage"]
    # when / then: bodies of white space and invisible characters are empty
    for body in [*INVISIBLE, "\u202e", "\u2066\u2069"]:
        error = await ann.client.error(SEND, input={"conversationId": group, "body": body})
        assert_bad_input(error, "body", body)
        error = await ann.client.error(EDIT, id=sent["id"], body=body)
        assert_bad_input(error, "body", body)
    # when: visible text with joiners, or with invisible characters around it
    kept = [*WITH_JOINERS, "\u200bhello\ufeff"]
    for body in kept:
        await ann.client(SEND, input={"conversationId": group, "body": body})
    # then: nothing was refused that had something to show, and it is stored as sent
    texts = [body for kind, body in await bodies(ann, group) if kind == "TEXT"]
    assert texts == ["first", *kept]
    edited = await ann.client(EDIT, id=sent["id"], body="\u2068first\u2069")
    assert edited["editMessage"] == {"body": "\u2068first\u2069"}


async def test_body_length_counts_utf16_code_units_of_the_visible_text(
    new_user: NewUser,
) -> None:
    # given: 😀 is one code point and two UTF-16 code units (its length in JavaScript)
    ann = await new_user()
    group = (await create_group(ann))["id"]
    longest = "😀" * 2000
    # when / then: 4000 code units, and invisible padding that does not count
    for body in [longest, "\u200b" + "x" * 4000 + "\ufeff\n"]:
        sent = await ann.client(SEND, input={"conversationId": group, "body": body})
        assert sent["sendMessage"]["body"] == body
    # when / then: 4001 code units (2001 code points) are too many
    error = await ann.client.error(SEND, input={"conversationId": group, "body": longest + "!"})
    assert_bad_input(error, "body", "4001 code units")
    assert "UTF-16" in error.errors[0]["message"]


async def test_display_names_refuse_bidi_controls(client: Client, new_user: NewUser) -> None:
    # given
    ann = await new_user("Ann")
    # when / then: at registration and on profile changes, wherever the control stands
    for control in BIDI_CONTROLS:
        for name in [f"Ann{control}gnp.exe", f"{control}Ann", f"Ann{control}"]:
            error = await client.error(
                REGISTER,
                input={"username": unique(), "password": "s3cret-pass", "displayName": name},
            )
            assert_bad_input(error, "displayName", name)
            error = await ann.client.error(UPDATE_PROFILE, input={"displayName": name})
            assert_bad_input(error, "displayName", name)
    viewer = await ann.client("{ viewer { displayName } }")
    assert viewer["viewer"]["displayName"] == "Ann"


async def test_display_names_need_a_visible_character(client: Client, new_user: NewUser) -> None:
    # given
    ann = await new_user("Ann")
    # when / then
    for name in [*INVISIBLE, "\u2800\u2800\u2800"]:
        error = await client.error(
            REGISTER, input={"username": unique(), "password": "s3cret-pass", "displayName": name}
        )
        assert_bad_input(error, "displayName", name)
        error = await ann.client.error(UPDATE_PROFILE, input={"displayName": name})
        assert_bad_input(error, "displayName", name)
    viewer = await ann.client("{ viewer { displayName } }")
    assert viewer["viewer"]["displayName"] == "Ann"


async def test_display_names_lose_invisible_ends_and_refuse_invisible_characters_inside(
    client: Client, new_user: NewUser
) -> None:
    # when: invisible characters around a name are trimmed like white space
    trimmed = await register(client, "\ufeff\u200b Ann\u3164\u2800 ")
    # then
    assert trimmed["displayName"] == "Ann"
    # when / then: inside a name they are refused, never silently dropped
    inside = ["A\u200bnn", "Ann\u3164Bob", "Ann\u2800\u2800Bob", "Ann\u2060Bob", "An\u00adn"]
    # and so are those that attach to a letter without a reason to be there:
    # a joiner, a grapheme joiner, a variation selector, tags spelling hidden text
    attached = [
        "An\u200dn",
        "A\u034fnn",
        "Ann\ufe0f",
        "Ann\U000e0041\U000e0042",
        "Ann\u200cBob",
        "\U0001f469\u200d\u200d\U0001f4bb",  # two joiners where one joins
        "\U0001f469\u200dAnn",  # a joiner that joins an emoji to nothing
    ]
    for name in inside + attached:
        error = await client.error(
            REGISTER, input={"username": unique(), "password": "s3cret-pass", "displayName": name}
        )
        assert_bad_input(error, "displayName", name)
    # when / then: joiners and selectors that belong to visible characters are kept
    ann = await new_user("Ann")
    flag = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
    kept = [
        "Ann 👩\u200d💻",
        "\u0645\u0647\u200c\u0633\u0627",
        "Ann ❤️",
        "Zoë",
        f"Ann {flag}",
        "\u0dc1\u0dca\u200d\u0dbb\u0dd3",  # Sinhala "Sri": ZWJ after a virama
        "\u845b\U000e0100\u57ce",  # a Japanese name's ideographic variation selector
        "\u05d0\u05b8\u034f\u05b7",  # Hebrew: CGJ between two vowel points
    ]
    for name in kept:
        changed = await ann.client(UPDATE_PROFILE, input={"displayName": name})
        assert changed["updateProfile"]["displayName"] == name


async def test_group_titles_follow_the_name_rules(new_user: NewUser) -> None:
    # given
    owner = await new_user()
    group = await create_group(owner)
    # when / then: no visible character, or a bidi control, is refused in both mutations
    for title in [*INVISIBLE, *(f"Book{c}club" for c in BIDI_CONTROLS), "Book\u200bclub"]:
        error = await owner.client.error(CREATE_GROUP, input={"title": title})
        assert_bad_input(error, "title", title)
        error = await owner.client.error(
            UPDATE_GROUP, input={"groupId": group["id"], "title": title}
        )
        assert_bad_input(error, "title", title)
    # when: invisible ends are trimmed
    created = await owner.client(CREATE_GROUP, input={"title": "\u200bBook club\ufeff"})
    renamed = await owner.client(
        UPDATE_GROUP, input={"groupId": group["id"], "title": "\u3164Reading ❤️ "}
    )
    # then
    assert created["createGroup"]["title"] == "Book club"
    assert renamed["updateGroup"]["title"] == "Reading ❤️"


async def test_a_description_without_a_visible_character_is_no_description(
    new_user: NewUser,
) -> None:
    # given
    owner = await new_user()
    group = await create_group(owner)
    described = await owner.client(
        UPDATE_GROUP, input={"groupId": group["id"], "description": "Books"}
    )
    assert described["updateGroup"]["description"] == "Books"
    # when
    blank = await owner.client(
        UPDATE_GROUP, input={"groupId": group["id"], "description": "\u200b\u3164\n\u2800"}
    )
    created = await owner.client(
        CREATE_GROUP, input={"title": "Quiet", "description": "\ufeff\u200b"}
    )
    # then
    assert blank["updateGroup"]["description"] is None
    assert created["createGroup"]["description"] is None
    # when / then: visible prose keeps its bidi marks and isolates, like a message body
    text = "Read \u2067\u05e9\u05dc\u05d5\u05dd!\u200f\u2069 with us"
    prose = await owner.client(
        UPDATE_GROUP, input={"groupId": group["id"], "description": f" {text}\n"}
    )
    assert prose["updateGroup"]["description"] == text


async def test_system_messages_show_no_reordered_or_invisible_names(new_user: NewUser) -> None:
    # given: a public group, and a would-be spoofer
    owner, mallory = await new_user("Olga"), await new_user("Mallory")
    group = await create_group(owner, public=True)
    for name in ["Olga\u202e removed Bob", "\u3164", "\u200b"]:
        # when: the spoofer tries to take a reordering or invisible name
        try:
            await mallory.client(UPDATE_PROFILE, input={"displayName": name})
        except GraphQLErrors as error:
            assert_bad_input(error, "displayName", name)
    # when: and then joins
    await mallory.client(JOIN_GROUP, id=group["id"])
    # then: the SYSTEM message names the joiner visibly and in order
    system = [body for kind, body in await bodies(owner, group["id"]) if kind == "SYSTEM"]
    assert system[-1] == "Mallory joined"


async def test_variant_emoji_are_one_reaction(new_user: NewUser) -> None:
    # given
    ann, bob = await new_user(), await new_user()
    group = (await create_group(ann))["id"]
    await ann.client(
        "mutation($id: ID!, $u: [ID!]!) { addMembers(conversationId: $id, userIds: $u) { id } }",
        id=group,
        u=[bob.id],
    )
    sent = await ann.client(SEND, input={"conversationId": group, "body": "vote"})
    message = sent["sendMessage"]["id"]
    # when: the same emoji, with and without the emoji variation selector
    await ann.client(ADD_REACTION, id=message, emoji="👍")
    added = await bob.client(ADD_REACTION, id=message, emoji="👍\ufe0f")
    # then
    assert added["addReaction"]["reactions"] == [
        {"emoji": "👍", "count": 2, "viewerHasReacted": True}
    ]
    # when: each removes it in the other spelling
    removed = await ann.client(REMOVE_REACTION, id=message, emoji="👍\ufe0f")
    # then
    assert removed["removeReaction"]["reactions"] == [
        {"emoji": "👍", "count": 1, "viewerHasReacted": False}
    ]
    assert (await bob.client(REMOVE_REACTION, id=message, emoji="👍"))["removeReaction"] == {
        "reactions": []
    }


async def test_reaction_keys_are_normalised_to_one_spelling(new_user: NewUser) -> None:
    # given
    users = [await new_user() for _ in range(3)]
    group = (await create_group(users[0]))["id"]
    await users[0].client(
        "mutation($id: ID!, $u: [ID!]!) { addMembers(conversationId: $id, userIds: $u) { id } }",
        id=group,
        u=[u.id for u in users[1:]],
    )
    sent = await users[0].client(SEND, input={"conversationId": group, "body": "spellings"})
    message = sent["sendMessage"]["id"]
    spellings = {
        # the fully-qualified emoji (as emoji keyboards send it) and its other spellings
        "❤️": ["❤️", "❤", "❤\ufe0e"],
        "1️⃣": ["1\ufe0f\u20e3", "1\u20e3", "1\ufe0e\u20e3"],
        "🏳️\u200d🌈": ["🏳️\u200d🌈", "🏳\u200d🌈", "🏳\ufe0f\u200d🌈\ufe0f"],
        # a short code, composed (NFC) and decomposed
        "caf\u00e9": ["caf\u00e9", "cafe\u0301", "caf\u00e9"],
    }
    # when
    for forms in spellings.values():
        for user, form in zip(users, forms, strict=True):
            await user.client(ADD_REACTION, id=message, emoji=form)
    # then: one reaction per emoji, under its one spelling
    data = await users[0].client(MESSAGE_REACTIONS, id=message)
    assert [(r["emoji"], r["count"]) for r in data["node"]["reactions"]] == [
        (key, 3) for key in spellings
    ]


async def test_invisible_reactions_are_refused(new_user: NewUser) -> None:
    # given
    ann = await new_user()
    group = (await create_group(ann))["id"]
    sent = await ann.client(SEND, input={"conversationId": group, "body": "react"})
    message = sent["sendMessage"]["id"]
    # when / then
    for emoji in [*INVISIBLE, "\u202e", "👍\u200b👍", "ok\u202e"]:
        error = await ann.client.error(ADD_REACTION, id=message, emoji=emoji)
        assert_bad_input(error, "emoji", emoji)
    data = await ann.client(MESSAGE_REACTIONS, id=message)
    assert data["node"]["reactions"] == []


async def test_names_and_titles_that_grow_when_casefolded_fit(
    client: Client, new_user: NewUser
) -> None:
    # given names and titles at their limit that casefold() makes longer ("ß" -> "ss")
    name, title = "ß" * 64, "ß" * 100
    # when they are used
    registered = await register(client, name)
    ann = await new_user()
    created = (await ann.client(CREATE_GROUP, input={"title": title}))["createGroup"]
    # then they are kept as given
    assert registered["displayName"] == name
    assert created["title"] == title
