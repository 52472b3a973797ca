"""Access tokens (short-lived signed JWTs) and refresh tokens (opaque, stored hashed)."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cachetools import LRUCache
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from joserfc.jwt import JWTClaimsRegistry

ISSUER = "parley"
_ALGORITHM = "HS256"
# Access tokens whose signature and claims were checked, kept (LRU) so that a
# client's next operations do not check them again: about 1 KB each.
VERIFIED_TOKENS_KEPT = 4096


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: int
    session_id: int
    expires_at: datetime
    exp: int  # expires_at as the token says it: a NumericDate


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    token: str
    expires_at: datetime


class TokenService:
    """Signs and checks access tokens with the server's secret key."""

    def __init__(self, secret_key: str, *, access_ttl: timedelta) -> None:
        self._key = OctKey.import_key(secret_key.encode())
        self.access_ttl = access_ttl
        self._claims_registry = JWTClaimsRegistry(
            iss={"essential": True, "value": ISSUER},
            exp={"essential": True},
            sub={"essential": True},
            sid={"essential": True},
        )
        self._verified: LRUCache[str, AccessClaims] = LRUCache(maxsize=VERIFIED_TOKENS_KEPT)

    def issue_access_token(
        self, *, user_id: int, session_id: int, now: datetime
    ) -> IssuedAccessToken:
        expires_at = now + self.access_ttl
        claims = {
            "iss": ISSUER,
            "sub": str(user_id),
            "sid": session_id,
            "iat": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        token = jwt.encode({"alg": _ALGORITHM}, claims, self._key)
        return IssuedAccessToken(token=token, expires_at=expires_at.replace(microsecond=0))

    def read_access_token(self, token: str) -> AccessClaims | None:
        """The token's claims, or None when it is malformed, forged or expired.

        A token's signature and claims cannot change, so one that was checked
        once is not checked again; only its expiry is, every time, as joserfc
        does it (valid while exp > now, in whole seconds). Whether its session
        is still signed in is for the caller to ask the database, every time.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify(token)
            if claims is None:
                return None
            self._verified[token] = claims
        if claims.exp <= int(time.time()):
            return None
        return claims

    def _verify(self, token: str) -> AccessClaims | None:
        try:
            decoded = jwt.decode(token, self._key, algorithms=[_ALGORITHM])
            self._claims_registry.validate(decoded.claims)
            claims = decoded.claims
            exp = int(claims["exp"])
            return AccessClaims(
                user_id=int(claims["sub"]),
                session_id=int(claims["sid"]),
                expires_at=datetime.fromtimestamp(exp, UTC),
                exp=exp,
            )
        except (JoseError, ValueError, TypeError, KeyError):
            return None


def new_refresh_token() -> tuple[str, str]:
    """A fresh opaque refresh token and the hash under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value, if that is what it is."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
