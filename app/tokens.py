"""API tokens: secrets handed out once and stored only as hashes.

Generated tokens (`bltn_` and 256 random bits) are stored as their SHA-256: there is
nothing to brute-force that a slow hash would protect, and listings show their first
characters (the marker and 6 random ones) to tell them apart.

The token from BULLETIN_ADMIN_TOKEN is chosen by a person, and may be guessable from a
fast hash if a copy of the database leaks. Its stored hash is scrypt (memory-hard), salted
with the installation's id and computed once when a process starts; requests carrying it
are recognised by comparing with the secret in memory, so it is still found by one indexed
lookup, never hashed slowly per request. No character of it is stored or listed.

Revoking is for good: a revoked BULLETIN_ADMIN_TOKEN stays revoked when a process starts
again with the same value (and says so in the log); a new value makes a new admin token.
The last live admin token cannot be revoked, so that no one is locked out by mistake.
"""

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.errors import Conflict, NotFound
from app.models import MAX_INT, Token, utc_now

logger = logging.getLogger("bulletin.tokens")

TOKEN_PREFIX = "bltn_"  # noqa: S105 - a marker, not a secret
ENVIRONMENT_TOKEN_NAME = "admin (BULLETIN_ADMIN_TOKEN)"  # noqa: S105 - a name
Scope = Literal["publish", "admin"]
SCOPE_RANK: dict[str, int] = {"publish": 1, "admin": 2}
# scrypt's cost for the environment token: 16 MiB and some 50 ms, once per process start.
SCRYPT_COST = {"n": 2**14, "r": 8, "p": 1}


class LastAdminToken(Conflict):
    code = "last_admin_token"


def new_secret() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """How a generated token is stored: its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()


# Remembered: a process that builds apps over and over (the test suite) hashes once.
@functools.lru_cache(maxsize=8)
def environment_hash(secret: str, installation_id: str) -> str:
    """How BULLETIN_ADMIN_TOKEN is stored: scrypt, salted with the installation's id."""
    salt = f"bulletin admin token {installation_id}".encode()
    return hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **SCRYPT_COST).hex()


def display_prefix(secret: str) -> str:
    """The first characters of a generated secret, safe to show in listings."""
    return secret[: len(TOKEN_PREFIX) + 6]


def scope_allows(granted: str, needed: str) -> bool:
    return SCOPE_RANK.get(granted, 0) >= SCOPE_RANK[needed]


@dataclass(frozen=True, slots=True)
class EnvironmentSecret:
    """BULLETIN_ADMIN_TOKEN as this process knows it: the secret and its stored hash."""

    secret: bytes
    stored_hash: str


class TokenStore:
    """Creates, lists, revokes and checks the stored tokens."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.environment: EnvironmentSecret | None = None

    def lookup_hash(self, secret: str) -> str:
        """The stored hash that names the token with this secret, if there is one."""
        environment = self.environment
        if environment is not None and hmac.compare_digest(secret.encode(), environment.secret):
            return environment.stored_hash
        return hash_secret(secret)

    async def create(self, name: str, scope: Scope) -> tuple[Token, str]:
        """Store a new token; returns it with its secret, which is never stored."""
        secret = new_secret()
        token = Token(
            name=name,
            scope=scope,
            secret_hash=hash_secret(secret),
            prefix=display_prefix(secret),
            from_environment=False,
            created_at=utc_now(),
        )
        async with self.database.write_session() as session:
            session.add(token)
        return token, secret

    async def list(self) -> list[Token]:
        async with self.database.read_session() as session:
            return list(await session.scalars(select(Token).order_by(Token.id)))

    async def revoke(self, token_id: int) -> Token:
        """Revoke a token for good; the last live admin token is refused (409)."""
        async with self.database.write_session() as session:
            token = await session.get(Token, token_id) if 0 < token_id <= MAX_INT else None
            if token is None:
                raise NotFound(f"There is no token {token_id}.")
            if token.revoked_at is not None:
                return token
            if token.scope == "admin" and not await _another_live_admin(session, token):
                raise LastAdminToken(
                    f"Token {token.id} is the last live admin token: create another admin "
                    "token first (bulletin token create --scope admin), then revoke this one."
                )
            token.revoked_at = utc_now()
        if token.from_environment:
            logger.warning(
                "token %s (BULLETIN_ADMIN_TOKEN) was revoked; it stays revoked when a process "
                "starts again with the same value: set a new value to make a new admin token",
                token.id,
            )
        return token

    async def authenticate(self, secret: str) -> Token | None:
        """The live token with this secret, if any."""
        async with self.database.read_session() as session:
            token = await session.scalar(
                select(Token).where(Token.secret_hash == self.lookup_hash(secret))
            )
        if token is None or token.revoked_at is not None:
            return None
        return token

    async def adopt_environment_token(self, secret: str, installation_id: str) -> None:
        """Make BULLETIN_ADMIN_TOKEN a stored admin token, unless it was revoked; retire any
        earlier value it replaced."""
        stored_hash = await asyncio.to_thread(environment_hash, secret, installation_id)
        # Another worker starting at the same moment may store it first.
        with contextlib.suppress(IntegrityError):
            await self._adopt(secret, stored_hash)
        # A value that is a generated token's secret is that token, found by its SHA-256.
        async with self.database.read_session() as session:
            adopted = await session.scalar(select(Token.id).where(Token.secret_hash == stored_hash))
        if adopted is not None:
            self.environment = EnvironmentSecret(secret.encode(), stored_hash)

    async def _adopt(self, secret: str, stored_hash: str) -> None:
        legacy_hash = hash_secret(secret)  # how versions before scrypt stored it
        retired: list[int] = []
        async with self.database.write_session() as session:
            earlier = list(
                await session.scalars(select(Token).where(Token.from_environment.is_(True)))
            )
            current = next(
                (t for t in earlier if t.secret_hash in (stored_hash, legacy_hash)), None
            )
            for token in earlier:
                token.prefix = ""  # earlier versions kept 11 characters of it
                if token is not current and token.revoked_at is None:
                    token.revoked_at = utc_now()
                    retired.append(token.id)
            generated = await session.scalar(
                select(Token.id).where(
                    Token.secret_hash == legacy_hash, Token.from_environment.is_(False)
                )
            )
            if current is not None:
                current.secret_hash = stored_hash
            elif generated is None:
                current = Token(
                    name=ENVIRONMENT_TOKEN_NAME,
                    scope="admin",
                    secret_hash=stored_hash,
                    prefix="",
                    from_environment=True,
                    created_at=utc_now(),
                )
                session.add(current)
                await session.flush()
        for token_id in retired:
            logger.info("BULLETIN_ADMIN_TOKEN has a new value: token %s is retired", token_id)
        if current is not None and current.id not in (t.id for t in earlier):
            logger.info("BULLETIN_ADMIN_TOKEN is stored as admin token %s", current.id)
        if current is None:
            logger.info("BULLETIN_ADMIN_TOKEN is token %s (a generated token)", generated)
        elif current.revoked_at is not None:
            logger.warning(
                "BULLETIN_ADMIN_TOKEN is token %s, revoked at %s: it stays revoked. Set a new "
                "value to make a new admin token, or use bulletin token create --scope admin",
                current.id,
                current.revoked_at.isoformat(),
            )


async def _another_live_admin(session: AsyncSession, token: Token) -> bool:
    # Every live admin row is locked, in one order: two revocations at once cannot both
    # see the other's token still live (PostgreSQL; SQLite has one writer at a time).
    live = await session.scalars(
        select(Token.id)
        .where(Token.scope == "admin", Token.revoked_at.is_(None))
        .order_by(Token.id)
        .with_for_update()
    )
    return any(token_id != token.id for token_id in live)
