from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.backends import database
from tests.client import Client, NewUser, User, sign_up
from tests.server import running_server


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real server for the session; tests keep apart by signing up their own users."""
    data_dir: Path = tmp_path_factory.mktemp("server")
    with database(data_dir) as (database_url, broadcast_url):
        with running_server(
            data_dir=data_dir, database_url=database_url, broadcast_url=broadcast_url
        ) as server:
            yield server.url


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[Client]:
    client = Client(server_url)
    try:
        yield client
    finally:
        await client.http.aclose()


@pytest.fixture
def new_user(client: Client) -> NewUser:
    async def make(display_name: str | None = None) -> User:
        return await sign_up(client, display_name=display_name)

    return make


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    from tests.backends import on_postgres

    if on_postgres():
        return
    skip = pytest.mark.skip(reason="PostgreSQL-only; run with PARLEY_TEST_BACKEND=postgres")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)
