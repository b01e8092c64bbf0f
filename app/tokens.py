"""API tokens: random secrets handed out once and stored only as SHA-256 hashes.

The secrets carry 256 random bits, so a fast hash is enough: there is nothing to
brute-force that a slow password hash would protect.
"""

import contextlib
import hashlib
import secrets
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.errors import NotFound
from app.models import MAX_INT, Token, utc_now

TOKEN_PREFIX = "bltn_"  # noqa: S105 - a marker, not a secret
Scope = Literal["publish", "admin"]
SCOPE_RANK: dict[str, int] = {"publish": 1, "admin": 2}


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    """The first characters of a secret, safe to show in listings."""
    return secret[: len(TOKEN_PREFIX) + 6]


def scope_allows(granted: str, needed: str) -> bool:
    return SCOPE_RANK.get(granted, 0) >= SCOPE_RANK[needed]


class TokenStore:
    """Creates, lists, revokes and checks the stored tokens."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(
        self, name: str, scope: Scope, *, secret: str | None = None, from_environment: bool = False
    ) -> tuple[Token, str]:
        """Store a new token; returns it with its secret, which is never stored."""
        secret = secret or new_secret()
        token = Token(
            name=name,
            scope=scope,
            secret_hash=hash_secret(secret),
            prefix=display_prefix(secret),
            from_environment=from_environment,
            created_at=utc_now(),
        )
        async with self.database.write_session() as session:
            session.add(token)
        return token, secret

    async def list(self) -> list[Token]:
        async with self.database.read_session() as session:
            return list(await session.scalars(select(Token).order_by(Token.id)))

    async def revoke(self, token_id: int) -> Token:
        async with self.database.write_session() as session:
            token = await session.get(Token, token_id) if 0 < token_id <= MAX_INT else None
            if token is None:
                raise NotFound(f"There is no token {token_id}.")
            if token.revoked_at is None:
                token.revoked_at = utc_now()
            return token

    async def authenticate(self, secret: str) -> Token | None:
        """The live token with this secret, if any."""
        async with self.database.read_session() as session:
            token = await session.scalar(
                select(Token).where(Token.secret_hash == hash_secret(secret))
            )
        if token is None or token.revoked_at is not None:
            return None
        return token

    async def adopt_environment_token(self, secret: str) -> None:
        """Make BULLETIN_ADMIN_TOKEN a stored admin token; retire any earlier one it replaced."""
        # Another worker starting at the same moment may store it first.
        with contextlib.suppress(IntegrityError):
            await self._adopt(secret)

    async def _adopt(self, secret: str) -> None:
        wanted = hash_secret(secret)
        async with self.database.write_session() as session:
            earlier = await session.scalars(
                select(Token).where(Token.from_environment.is_(True), Token.revoked_at.is_(None))
            )
            found = False
            for token in earlier:
                if token.secret_hash == wanted:
                    found = True
                else:
                    token.revoked_at = utc_now()
            if not found and not await session.scalar(
                select(Token.id).where(Token.secret_hash == wanted)
            ):
                session.add(
                    Token(
                        name="admin (BULLETIN_ADMIN_TOKEN)",
                        scope="admin",
                        secret_hash=wanted,
                        prefix=display_prefix(secret),
                        from_environment=True,
                        created_at=utc_now(),
                    )
                )
