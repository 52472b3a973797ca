"""A typical page costs a fixed, small number of SQL statements (no N+1)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.client import Client, sign_up
from tests.inprocess import StatementCounter, in_process
from tests.operations import ADD_REACTION, create_group, send

HISTORY_PAGE = """
query Page($id: ID!) {
  conversation(id: $id) {
    messages(last: 50) {
      edges { cursor node {
        id seq body createdAt
        author { id username displayName }
        replyTo { id body author { username } }
        reactions { emoji count viewerHasReacted }
      } }
      pageInfo { hasPreviousPage startCursor }
    }
  }
}
"""
CONVERSATION_LIST = """
query List {
  conversations(first: 20) {
    edges { cursor node {
      id lastSeq unreadCount lastActivityAt
      lastMessage { id body author { username } }
      ... on Group { title }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[tuple[Client, StatementCounter]]:
    async with in_process(tmp_path) as app:
        yield app.client, app.counter


async def test_history_page_of_50_with_authors_replies_and_reactions(
    app_client: tuple[Client, StatementCounter],
) -> None:
    # given a group where three people wrote 60 messages, replying and reacting
    client, counter = app_client
    people = [await sign_up(client) for _ in range(3)]
    owner = people[0]
    group, _ = await create_group(owner, *people[1:], title="N+1")
    previous = None
    for i in range(60):
        previous = (await send(people[i % 3], group, f"m{i}", replyToId=previous))["id"]
        await people[(i + 1) % 3].client(ADD_REACTION, id=previous, emoji="👍")
    # when
    counter.statements.clear()
    data = await owner.client(HISTORY_PAGE, id=group)
    # then
    edges = data["conversation"]["messages"]["edges"]
    assert len(edges) == 50
    assert all(edge["node"]["reactions"][0]["count"] == 1 for edge in edges)
    # session check, membership, conversation, page, authors, replied-to, reactions
    assert len(counter.statements) == 7, counter.statements


async def test_conversation_list_of_20_with_last_message_and_unread_count(
    app_client: tuple[Client, StatementCounter],
) -> None:
    # given 25 conversations with messages from someone else
    client, counter = app_client
    viewer, other = await sign_up(client), await sign_up(client)
    for i in range(25):
        group, _ = await create_group(other, viewer, title=f"g{i}")
        await send(other, group, f"hello {i}")
    # when
    counter.statements.clear()
    data = await viewer.client(CONVERSATION_LIST)
    # then
    edges = data["conversations"]["edges"]
    assert len(edges) == 20
    assert [e["node"]["title"] for e in edges][:2] == ["g24", "g23"]
    assert all(e["node"]["unreadCount"] == 1 for e in edges)
    # session check, the list, last messages, their authors, memberships, unread counts
    assert len(counter.statements) == 6, counter.statements
