"""Access tokens: checked once, expired on time however often they were read."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from auth import tokens
from auth.tokens import TokenService

SECRET = "a-test-secret-of-at-least-thirty-two-characters"


def test_a_token_read_again_still_expires_on_time(monkeypatch: pytest.MonkeyPatch) -> None:
    service = TokenService(SECRET, access_ttl=timedelta(seconds=30))
    issued = service.issue_access_token(user_id=7, session_id=3, now=datetime.now(UTC))
    # when it is read (and so kept) while valid
    claims = service.read_access_token(issued.token)
    assert claims is not None and (claims.user_id, claims.session_id) == (7, 3)
    assert service.read_access_token(issued.token) == claims
    # then, once its time is up, it is refused like any expired token
    later = time.time() + 31
    monkeypatch.setattr(time, "time", lambda: later)  # joserfc's clock too
    assert service.read_access_token(issued.token) is None
    # as a service that never saw it says
    assert TokenService(SECRET, access_ttl=timedelta(30)).read_access_token(issued.token) is None


def test_forged_and_foreign_tokens_are_refused_every_time() -> None:
    service = TokenService(SECRET, access_ttl=timedelta(seconds=30))
    other = TokenService("another-secret-of-at-least-thirty-two-chars", access_ttl=timedelta(60))
    foreign = other.issue_access_token(user_id=7, session_id=3, now=datetime.now(UTC)).token
    for token in (foreign, foreign[:-2] + "xx", "not.a.token", ""):
        assert service.read_access_token(token) is None
        assert service.read_access_token(token) is None


def test_the_tokens_kept_are_bounded() -> None:
    service = TokenService(SECRET, access_ttl=timedelta(seconds=30))
    now = datetime.now(UTC)
    for session in range(tokens.VERIFIED_TOKENS_KEPT + 100):
        token = service.issue_access_token(user_id=1, session_id=session, now=now).token
        assert service.read_access_token(token) is not None
    assert len(service._verified) == tokens.VERIFIED_TOKENS_KEPT  # noqa: SLF001 (the cache)
