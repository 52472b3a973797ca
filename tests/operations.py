"""The GraphQL operations and small steps that several test files share.

Each operation selects what any of its users asserts on, so that one document
serves every file. Operations that only one file uses stay in that file.
"""

from __future__ import annotations

import base64
from typing import Any

from tests.client import User, unique

GROUP_FIELDS = "id title description isPublic viewerRole memberCount lastSeq"
MESSAGE_FIELDS = (
    "id seq kind body clientMessageId editedAt deletedAt author { id } replyTo { id body }"
)
REACTION_FIELDS = "id reactions { emoji count viewerHasReacted }"

CREATE_GROUP = (
    "mutation CreateGroup($input: CreateGroupInput!) "
    "{ createGroup(input: $input) { " + GROUP_FIELDS + " } }"
)
UPDATE_GROUP = (
    "mutation UpdateGroup($input: UpdateGroupInput!) "
    "{ updateGroup(input: $input) { " + GROUP_FIELDS + " } }"
)
ADD_MEMBERS = (
    "mutation AddMembers($id: ID!, $userIds: [ID!]!) "
    "{ addMembers(conversationId: $id, userIds: $userIds) { " + GROUP_FIELDS + " } }"
)
REMOVE_MEMBER = (
    "mutation RemoveMember($id: ID!, $userId: ID!) "
    "{ removeMember(conversationId: $id, userId: $userId) { " + GROUP_FIELDS + " } }"
)
SET_ROLE = (
    "mutation SetRole($id: ID!, $userId: ID!, $role: MemberRole!) "
    "{ setMemberRole(conversationId: $id, userId: $userId, role: $role) { role user { id } } }"
)
OPEN_DIRECT = """
mutation OpenDirect($userId: ID!) {
  openDirectConversation(userId: $userId) {
    id lastSeq peer { id username } members { totalCount edges { node { user { id } } } }
  }
}
"""
SEND = (
    "mutation Send($input: SendMessageInput!) "
    "{ sendMessage(input: $input) { " + MESSAGE_FIELDS + " } }"
)
EDIT_MESSAGE = (
    "mutation Edit($id: ID!, $body: String!) "
    "{ editMessage(messageId: $id, body: $body) { " + MESSAGE_FIELDS + " } }"
)
DELETE_MESSAGE = (
    "mutation Delete($id: ID!) { deleteMessage(messageId: $id) { " + MESSAGE_FIELDS + " } }"
)
ADD_REACTION = (
    "mutation React($id: ID!, $emoji: String!) "
    "{ addReaction(messageId: $id, emoji: $emoji) { " + REACTION_FIELDS + " } }"
)
MARK_READ = """
mutation MarkRead($id: ID!, $seq: Int!) {
  markRead(conversationId: $id, seq: $seq) { id lastSeq viewerLastReadSeq unreadCount }
}
"""
CONVERSATION = """
query Conversation($id: ID!) {
  conversation(id: $id) {
    __typename id lastSeq viewerLastReadSeq unreadCount
    lastMessage { id seq kind body author { id } }
    members(first: 100) { totalCount edges { node { role lastReadSeq user { id } } } }
    ... on Group { title viewerRole memberCount }
  }
}
"""
HISTORY = """
query History($id: ID!, $before: String) {
  messages(conversationId: $id, last: 100, before: $before) {
    edges { node { id seq kind body editedAt deletedAt author { id } reactions { emoji count } } }
    pageInfo { hasPreviousPage startCursor }
  }
}
"""
CONVERSATIONS = """
query Conversations($first: Int, $after: String) {
  conversations(first: $first, after: $after) {
    edges { cursor node { __typename id lastActivityAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
PUBLIC_GROUPS = """
query PublicGroups($search: String, $first: Int, $after: String) {
  publicGroups(search: $search, first: $first, after: $after) {
    edges { cursor node { id title isPublic } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}
"""
EVENTS = """
subscription Events($id: ID!, $after: Int) {
  conversationEvents(conversationId: $id, afterSeq: $after) {
    __typename seq conversationId at
    ... on MessageAdded {
      message { id seq body kind author { username } reactions { emoji } }
    }
    ... on MessageEdited { message { id body editedAt } }
    ... on MessageDeleted { message { id body deletedAt } }
    ... on ReactionsChanged { message { id reactions { emoji count viewerHasReacted } } }
    ... on MembersChanged { actor { username } added { username } removed { username } }
    ... on ConversationUpdated { conversation { id ... on Group { title } } }
  }
}
"""


async def create_group(
    owner: User, *members: User, public: bool = False, title: str | None = None
) -> tuple[str, int]:
    """A new group of ``owner`` and ``members``: its ID and its lastSeq."""
    data = await owner.client(
        CREATE_GROUP,
        input={
            "title": title or unique("Group "),
            "isPublic": public,
            "memberIds": [m.id for m in members],
        },
    )
    return str(data["createGroup"]["id"]), int(data["createGroup"]["lastSeq"])


async def open_direct(user: User, peer: User) -> str:
    """The ID of the direct conversation of ``user`` and ``peer``."""
    return str((await user.client(OPEN_DIRECT, userId=peer.id))["openDirectConversation"]["id"])


async def send(user: User, conversation_id: str, body: str, **extra: Any) -> dict[str, Any]:
    """The message as sent; ``extra`` adds to the input (clientMessageId, replyToId)."""
    data = await user.client(SEND, input={"conversationId": conversation_id, "body": body, **extra})
    return dict(data["sendMessage"])


async def conversation(user: User, conversation_id: str) -> dict[str, Any]:
    """The conversation as ``user`` sees it (CONVERSATION's selection)."""
    return dict((await user.client(CONVERSATION, id=conversation_id))["conversation"])


async def history(user: User, conversation_id: str) -> list[dict[str, Any]]:
    """Every message of the conversation, oldest first, read page by page."""
    messages: list[dict[str, Any]] = []
    before = None
    while True:
        page = (await user.client(HISTORY, id=conversation_id, before=before))["messages"]
        messages = [edge["node"] for edge in page["edges"]] + messages
        if not page["pageInfo"]["hasPreviousPage"]:
            return messages
        before = page["pageInfo"]["startCursor"]


def opaque(text: str) -> str:
    """IDs and cursors are base64url text; this forges well-formed ones."""
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def made_up_id(type_name: str) -> str:
    """A well-formed global ID that names nothing."""
    return opaque(f"{type_name}:987654321")
