"""Registration, sign-in, token rotation and sign-out, over HTTP against a real server."""

from __future__ import annotations

import asyncio

from tests.client import REGISTER, Client, unique

LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken user { username } }
}
"""
REFRESH = """
mutation Refresh($token: String!) {
  refreshSession(refreshToken: $token) { accessToken refreshToken accessTokenExpiresAt }
}
"""
LOGOUT = "mutation Logout($token: String!) { logout(refreshToken: $token) }"
VIEWER = "query { viewer { id username displayName } }"


async def test_register_then_viewer(client: Client) -> None:
    # given
    username = unique("Ann")
    # when
    data = await client(
        REGISTER, input={"username": username, "password": "s3cret-pass", "displayName": " Ann "}
    )
    # then
    payload = data["register"]
    assert payload["user"]["username"] == username
    assert payload["user"]["displayName"] == "Ann"
    assert payload["accessTokenExpiresAt"].endswith("+00:00")
    viewer = await client.as_user(payload["accessToken"])(VIEWER)
    assert viewer["viewer"]["username"] == username


async def test_usernames_are_unique_case_insensitively(client: Client) -> None:
    username = unique("bob")
    await client(REGISTER, input={"username": username, "password": "s3cret-pass"})
    error = await client.error(
        REGISTER, input={"username": username.upper(), "password": "s3cret-pass"}
    )
    assert error.code == "CONFLICT"


async def test_registration_rules(client: Client) -> None:
    cases = [
        {"username": "ab", "password": "s3cret-pass"},
        {"username": "x" * 33, "password": "s3cret-pass"},
        {"username": "has space", "password": "s3cret-pass"},
        {"username": "émile", "password": "s3cret-pass"},
        {"username": unique(), "password": "short"},
        {"username": unique(), "password": "p" * 129},
        {"username": "samename", "password": "SameName"},
        {"username": unique(), "password": "s3cret-pass", "displayName": "   "},
    ]
    for case in cases:
        error = await client.error(REGISTER, input=case)
        assert error.code == "BAD_USER_INPUT", case
        assert error.errors[0]["message"]


async def test_concurrent_registrations_of_one_name_give_one_account(client: Client) -> None:
    username = unique()
    results = await asyncio.gather(
        *(
            client.raw(REGISTER, {"input": {"username": username, "password": "s3cret-pass"}})
            for _ in range(4)
        )
    )
    winners = [r for r in results if r.get("data")]
    codes = [r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")]
    assert len(winners) == 1
    assert codes == ["CONFLICT"] * 3


async def test_login_with_right_and_wrong_password(client: Client) -> None:
    username = unique()
    await client(REGISTER, input={"username": username, "password": "s3cret-pass"})
    data = await client(LOGIN, input={"username": username.upper(), "password": "s3cret-pass"})
    assert data["login"]["user"]["username"] == username
    wrong = await client.error(LOGIN, input={"username": username, "password": "wrong-pass"})
    unknown = await client.error(LOGIN, input={"username": unique(), "password": "wrong-pass"})
    assert wrong.code == unknown.code == "UNAUTHENTICATED"
    # The same message either way: the response does not tell which users exist.
    assert wrong.errors[0]["message"] == unknown.errors[0]["message"]


async def test_refresh_rotates_and_reuse_revokes_the_session(client: Client) -> None:
    # given
    username = unique()
    first = (await client(REGISTER, input={"username": username, "password": "s3cret-pass"}))[
        "register"
    ]
    # when: rotate once
    second = (await client(REFRESH, token=first["refreshToken"]))["refreshSession"]
    assert second["refreshToken"] != first["refreshToken"]
    assert (await client.as_user(second["accessToken"])(VIEWER))["viewer"]["username"] == username
    # when: the spent token comes back
    reuse = await client.error(REFRESH, token=first["refreshToken"])
    # then: the whole session is gone, the newest tokens included
    assert reuse.code == "UNAUTHENTICATED"
    assert (await client.error(REFRESH, token=second["refreshToken"])).code == "UNAUTHENTICATED"
    assert (await client.as_user(second["accessToken"]).error(VIEWER)).code == "UNAUTHENTICATED"


async def test_concurrent_refreshes_with_one_token_let_exactly_one_through(
    client: Client,
) -> None:
    # given a fresh session
    username = unique()
    token = (await client(REGISTER, input={"username": username, "password": "s3cret-pass"}))[
        "register"
    ]["refreshToken"]
    # when its refresh token is presented three times at once
    results = await asyncio.gather(*(client.raw(REFRESH, {"token": token}) for _ in range(3)))
    # then one refresh succeeds and the two others are refused as reuse
    succeeded = [r for r in results if not r.get("errors")]
    refused = [r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")]
    assert len(succeeded) == 1
    assert succeeded[0]["data"]["refreshSession"]["refreshToken"] != token
    assert refused == ["UNAUTHENTICATED", "UNAUTHENTICATED"]


async def test_logout_ends_the_session(client: Client) -> None:
    username = unique()
    payload = (await client(REGISTER, input={"username": username, "password": "s3cret-pass"}))[
        "register"
    ]
    assert (await client(LOGOUT, token=payload["refreshToken"]))["logout"] is True
    assert (await client(LOGOUT, token=payload["refreshToken"]))["logout"] is False
    assert (await client.error(REFRESH, token=payload["refreshToken"])).code == "UNAUTHENTICATED"
    assert (await client.as_user(payload["accessToken"]).error(VIEWER)).code == "UNAUTHENTICATED"


async def test_other_sessions_survive_a_logout(client: Client) -> None:
    username = unique()
    phone = (await client(REGISTER, input={"username": username, "password": "s3cret-pass"}))[
        "register"
    ]
    laptop = (await client(LOGIN, input={"username": username, "password": "s3cret-pass"}))["login"]
    await client(LOGOUT, token=phone["refreshToken"])
    assert (await client.as_user(laptop["accessToken"])(VIEWER))["viewer"]["username"] == username


async def test_bad_tokens_are_unauthenticated(client: Client) -> None:
    for token in ["garbage", "a.b.c", ""]:
        error = await client.as_user(token).error(VIEWER)
        assert error.code == "UNAUTHENTICATED"
    assert (await client.error(REFRESH, token="not-a-token")).code == "UNAUTHENTICATED"


async def test_oidc_without_a_configured_provider_is_refused(client: Client) -> None:
    error = await client.error(
        'mutation { loginWithOidc(input: {provider: "google", idToken: "x"}) { accessToken } }'
    )
    assert error.code == "BAD_USER_INPUT"
