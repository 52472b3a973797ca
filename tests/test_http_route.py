"""GraphQL over HTTP POST: served past FastAPI's routing, with the app's middleware all the same."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.inprocess import in_process


async def test_a_post_gets_cors_headers_and_json_as_any_request(tmp_path: Path) -> None:
    async with in_process(tmp_path) as app:
        http = app.client.http
        headers = {"Origin": "https://chat.example"}
        posted = await http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        fetched = await http.get("/graphql", params={"query": "{ __typename }"}, headers=headers)
        preflight = await http.options(
            "/graphql", headers={**headers, "Access-Control-Request-Method": "POST"}
        )
        refused = await http.post("/graphql", content=b"x", headers=headers)
    for response in (posted, fetched):
        assert response.status_code == 200
        assert response.json() == {"data": {"__typename": "Query"}}
        assert response.headers["content-type"] == "application/json"
    for response in (posted, fetched, preflight, refused):
        assert response.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_other_paths_and_methods_take_the_full_stack(tmp_path: Path) -> None:
    async with in_process(tmp_path) as app:
        http: httpx.AsyncClient = app.client.http
        assert (await http.get("/health")).json() == {"status": "ok"}
        assert (await http.post("/nowhere", json={})).status_code == 404
        slash = await http.post("/graphql/", json={"query": "{ __typename }"})
        assert slash.status_code == 307
