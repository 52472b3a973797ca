"""Starting the server as a user would, and the HTTP transport around GraphQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from main import Settings
from tests.operations import opaque
from tests.server import ROOT, free_port


def test_starts_with_no_configuration_at_all(tmp_path: Path) -> None:
    # given an empty working directory and no Parley settings in the environment
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "BROADCAST_", "DATA_DIR", "SECRET_"))
    }
    port = free_port()
    env["PORT"] = str(port)
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # when it is up
        for _ in range(300):
            try:
                response = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={
                        "query": "mutation { register(input: "
                        '{username: "first", password: "long enough"}) { user { username } } }'
                    },
                    timeout=2,
                )
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    pytest.fail(process.stdout.read() if process.stdout else "server exited")
                time.sleep(0.1)
        # then it serves from a SQLite file and a generated secret in ./data
        assert response.json()["data"]["register"]["user"]["username"] == "first"
        assert (tmp_path / "data" / "parley.db").exists()
        assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o077 == 0
    finally:
        process.terminate()
        output = process.communicate(timeout=10)[0]
    assert "SECRET_KEY is not set" in output


@pytest.mark.parametrize("secret", ["", "changethis", "short-secret"])
def test_production_refuses_a_missing_or_placeholder_secret(secret: str) -> None:
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(environment="production", secret_key=secret)


def test_production_accepts_a_real_secret() -> None:
    settings = Settings(environment="production", secret_key="k" * 48)
    assert settings.resolved_secret_key() == "k" * 48


async def test_graphiql_and_queries_over_get(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert "graphiql" in page.text.lower()
        query = await http.get("/graphql", params={"query": "{ __typename }"})
        assert query.json() == {"data": {"__typename": "Query"}}
        # mutations are refused over GET (a link must never change anything)
        refused = await http.get(
            "/graphql",
            params={"query": 'mutation { logout(refreshToken: "x") }'},
        )
        assert refused.status_code == 400


async def test_a_document_past_the_token_limit_is_refused_unparsed(server_url: str) -> None:
    # given a document of some 4,500 tokens (three per alias)
    many = " ".join(f"a{i}: __typename" for i in range(1500))
    async with httpx.AsyncClient(base_url=server_url) as http:
        # when / then
        answer = (await http.post("/graphql", json={"query": f"{{ {many} }}"})).json()
        fewer = (await http.post("/graphql", json={"query": f"{{ {many[:6000]} }}"})).json()
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    assert "4000 tokens" in error["message"]
    # below it, the document parses (and meets the alias limit instead)
    assert "tokens" not in fewer["errors"][0]["message"]


async def test_malformed_documents_get_codes(server_url: str) -> None:
    async with httpx.AsyncClient(base_url=server_url) as http:
        parse = (await http.post("/graphql", json={"query": "{ viewer { "})).json()
        assert parse["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
        unknown = (await http.post("/graphql", json={"query": "{ nope }"})).json()
        assert unknown["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        variables = (
            await http.post(
                "/graphql",
                json={
                    "query": "query($n: Int) { users(first: $n) { edges { cursor } } }",
                    "variables": {"n": "x"},
                },
            )
        ).json()
        assert variables["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_several_operations_need_an_operation_name(server_url: str) -> None:
    document = "query A { __typename } query B { viewer { id } }"
    async with httpx.AsyncClient(base_url=server_url) as http:
        unnamed = (await http.post("/graphql", json={"query": document})).json()
        named = (await http.post("/graphql", json={"query": document, "operationName": "A"})).json()
    assert unnamed["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert named == {"data": {"__typename": "Query"}}


async def test_input_no_database_can_hold_is_bad_user_input(server_url: str) -> None:
    """NUL characters and ids past INTEGER: refused up front, on SQLite and PostgreSQL alike."""
    async with httpx.AsyncClient(base_url=server_url) as http:
        register = await http.post(
            "/graphql",
            json={
                "query": "mutation($u: String!) { register(input: "
                '{username: $u, password: "long enough"}) { accessToken } }',
                "variables": {"u": "odd" + uuid.uuid4().hex[:8]},
            },
        )
        token = register.json()["data"]["register"]["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}

        async def code(query: str, **variables: object) -> object:
            body = (
                await http.post(
                    "/graphql", json={"query": query, "variables": variables}, headers=headers
                )
            ).json()
            return body["errors"][0]["extensions"]["code"] if body.get("errors") else body["data"]

        big = opaque("User:2147483648")
        assert await code("query($id: ID!) { node(id: $id) { id } }", id=big) == "BAD_USER_INPUT"
        assert (
            await code("query($s: String) { users(search: $s) { edges { cursor } } }", s="a\x00")
            == "BAD_USER_INPUT"
        )
        assert (
            await code(
                "query($s: String) { publicGroups(search: $s) { edges { cursor } } }", s="\x00"
            )
            == "BAD_USER_INPUT"
        )
        assert (
            await code(
                "query($q: String!) { searchMessages(query: $q) { edges { cursor } } }", q="x\x00"
            )
            == "BAD_USER_INPUT"
        )
        assert await code(
            "query($u: String!) { userByUsername(username: $u) { id } }", u="a\x00b"
        ) == {"userByUsername": None}
        login = (
            "mutation($u: String!) "
            '{ login(input: {username: $u, password: "whatever1"}) { accessToken } }'
        )
        assert await code(login, u="a\x00b") == "UNAUTHENTICATED"
        avatar = "mutation($a: String) { updateProfile(input: {avatarUrl: $a}) { avatarUrl } }"
        assert await code(avatar, a="https://x.test/\x00") == "BAD_USER_INPUT"
        assert await code(avatar, a="https://x.test/a b") == "BAD_USER_INPUT"


async def test_websocket_compression_is_negotiated_only_when_configured(tmp_path: Path) -> None:
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    from tests.backends import database
    from tests.server import running_server

    async def negotiated(url: str) -> str | None:
        async with connect(
            url.replace("http://", "ws://") + "/graphql",
            subprotocols=[Subprotocol("graphql-transport-ws")],
            compression="deflate",  # offered, as browsers do
        ) as socket:
            assert socket.response is not None
            return socket.response.headers.get("Sec-WebSocket-Extensions")

    for setting, expected in (("false", None), ("true", "permessage-deflate")):
        data_dir = tmp_path / setting
        data_dir.mkdir()
        with database(data_dir) as (database_url, broadcast_url):
            with running_server(
                data_dir=data_dir,
                database_url=database_url,
                broadcast_url=broadcast_url,
                extra_env={"WS_COMPRESSION": setting},
            ) as server:
                extensions = await negotiated(server.url)
        assert (extensions or "").split(";")[0] == (expected or ""), extensions
