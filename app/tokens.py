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
The last live admin token cannot be revoked, so that no one is locked out by mistake: a
legacy `admin` token, or a token of an active admin user, that is not narrowed.

A token either acts as a user (scope `user`) or is a legacy token of no user (scope
`admin` or `publish`); either may be narrowed to some blogs and a maximum role (what each
may do: app/people/principals.py). Creating and revoking tokens is an admin's, audited.
"""

import asyncio
import contextlib
import functools
import hashlib
import hmac
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.db import Database
from app.errors import Conflict, InvalidInput, NotFound
from app.models import MAX_INT, Blog, Token, TokenBlog, User, utc_now
from app.people.permissions import require_admin
from app.people.roles import SYSTEM, Principal, Role

logger = logging.getLogger("bulletin.tokens")

TOKEN_PREFIX = "bltn_"  # noqa: S105 - a marker, not a secret
ENVIRONMENT_TOKEN_NAME = "admin (BULLETIN_ADMIN_TOKEN)"  # noqa: S105 - a name
Scope = Literal["publish", "admin"]
# scrypt's cost for the environment token: 16 MiB and some 50 ms, once per process start.
SCRYPT_COST = {"n": 2**14, "r": 8, "p": 1}


class LastAdminToken(Conflict):
    code = "last_admin_token"


class LastAdmin(Conflict):
    code = "last_admin"


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

    async def create(
        self,
        name: str,
        scope: Scope | None = None,
        *,
        user_id: int | None = None,
        blogs: Sequence[str] = (),
        max_role: Role | None = None,
        actor: Principal = SYSTEM,
    ) -> tuple[Token, str]:
        """Store a new token, legacy (`scope`) or of a user (`user_id`), narrowed to `blogs`
        (slugs) and `max_role` if given; returns it with its secret, which is never stored."""
        require_admin(actor, "Creating tokens")
        if (scope is None) == (user_id is None):
            raise ValueError("a token has either a user or a scope")
        secret = new_secret()
        token = Token(
            name=name,
            scope=scope or "user",
            secret_hash=hash_secret(secret),
            prefix=display_prefix(secret),
            from_environment=False,
            created_at=utc_now(),
            user_id=user_id,
            max_role=max_role,
        )
        async with self.database.write_session() as session:
            if user_id is not None and await session.get(User, user_id) is None:
                raise InvalidInput(
                    f"There is no user {user_id}.", fields={"user_id": "no such user"}
                )
            blog_ids = await _blog_ids(session, blogs)
            session.add(token)
            await session.flush()
            session.add_all(TokenBlog(token_id=token.id, blog_id=b) for b in blog_ids)
            audit.record(
                session,
                actor,
                "token.created",
                details={
                    "token_id": token.id,
                    "scope": token.scope,
                    "user_id": user_id,
                    "blogs": list(blogs),
                    "max_role": max_role,
                },
            )
        return token, secret

    async def blog_slugs(self) -> dict[int, list[str]]:
        """The slugs of the blogs each narrowed token is narrowed to, by token id."""
        async with self.database.read_session() as session:
            rows = await session.execute(
                select(TokenBlog.token_id, Blog.slug)
                .join(Blog, Blog.id == TokenBlog.blog_id)
                .order_by(TokenBlog.token_id, Blog.slug)
            )
            narrowed: dict[int, list[str]] = {}
            for token_id, slug in rows:
                narrowed.setdefault(token_id, []).append(slug)
            return narrowed

    async def list(self) -> list[Token]:
        async with self.database.read_session() as session:
            return list(await session.scalars(select(Token).order_by(Token.id)))

    async def revoke(self, token_id: int, actor: Principal = SYSTEM) -> Token:
        """Revoke a token for good; the last live admin token is refused (409)."""
        require_admin(actor, "Revoking tokens")
        async with self.database.write_session() as session:
            token = await session.get(Token, token_id) if 0 < token_id <= MAX_INT else None
            if token is None:
                raise NotFound(f"There is no token {token_id}.")
            if token.revoked_at is not None:
                return token
            live_admins = await _live_admin_tokens(session)
            if token.id in live_admins and len(live_admins) == 1:
                raise LastAdminToken(
                    f"Token {token.id} is the last live admin token: create another admin "
                    "token first (bulletin token create --scope admin), then revoke this one."
                )
            token.revoked_at = utc_now()
            audit.record(session, actor, "token.revoked", details={"token_id": token.id})
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
            return await self.find(session, secret)

    async def find(self, session: AsyncSession, secret: str) -> Token | None:
        """`authenticate` within the caller's transaction."""
        found = await self.find_narrowed(session, secret)
        return found[0] if found is not None else None

    async def find_narrowed(
        self, session: AsyncSession, secret: str
    ) -> tuple[Token, frozenset[int]] | None:
        """The live token with this secret and the blogs it is narrowed to, in one query
        (every request that sends a token asks this)."""
        rows = (
            await session.execute(
                select(Token, TokenBlog.blog_id)
                .outerjoin(TokenBlog, TokenBlog.token_id == Token.id)
                .where(Token.secret_hash == self.lookup_hash(secret))
            )
        ).all()
        if not rows or rows[0][0].revoked_at is not None:
            return None
        return rows[0][0], frozenset(blog_id for _token, blog_id in rows if blog_id is not None)

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


async def _live_admin_tokens(session: AsyncSession) -> list[int]:
    """The live tokens that act as an admin: legacy admin tokens and tokens of active admin
    users, none of them narrowed."""
    # Every live admin row is locked, in one order: two revocations at once cannot both
    # see the other's token still live (PostgreSQL; SQLite has one writer at a time).
    admin_user = select(User.id).where(User.admin.is_(True), User.disabled_at.is_(None))
    live = await session.scalars(
        select(Token.id)
        .where(
            Token.revoked_at.is_(None),
            Token.max_role.is_(None),
            ~exists().where(TokenBlog.token_id == Token.id),
            or_(Token.scope == "admin", Token.user_id.in_(admin_user)),
        )
        .order_by(Token.id)
        .with_for_update(of=Token)
    )
    return list(live)


async def refuse_removing_last_admin(session: AsyncSession, user: User) -> None:
    """Refuse (409) disabling or demoting `user` when nothing else could act as an admin
    afterwards: no live admin token of anyone else and no other active admin user."""
    live = await _live_admin_tokens(session)
    others = await session.scalar(
        select(
            exists().where(
                Token.id.in_(live), or_(Token.user_id.is_(None), Token.user_id != user.id)
            )
        )
    )
    other_admin = await session.scalar(
        select(exists().where(User.admin.is_(True), User.disabled_at.is_(None), User.id != user.id))
    )
    if not others and not other_admin:
        raise LastAdmin(
            f"User {user.id} is the last admin: make another admin first (bulletin user "
            "create --admin, or bulletin token create --scope admin), then change this one."
        )


async def _blog_ids(session: AsyncSession, slugs: Sequence[str]) -> list[int]:
    found = dict(
        (await session.execute(select(Blog.slug, Blog.id).where(Blog.slug.in_(slugs)))).all()
    )
    missing = [slug for slug in slugs if slug not in found]
    if missing:
        raise InvalidInput(
            f"There is no blog '{missing[0]}'.", fields={"blogs": f"no blog '{missing[0]}'"}
        )
    return sorted({found[slug] for slug in slugs})
