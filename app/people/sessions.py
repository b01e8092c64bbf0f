"""Sign-in sessions of the newsroom page, and their CSRF tokens.

Signing in with a login and a password makes a session: a random secret (256 bits) that
the browser keeps in an HttpOnly cookie and this server keeps only as its SHA-256, as it
keeps tokens (app/tokens.py). A copy of the database names no live session. A session
acts as its user with the user's roles as they are at each request (a principal made by
`principals.for_user`, `via="session"`), and ends:

- after BULLETIN_SESSION_IDLE_SECONDS without a request (`last_seen_at`, written at most
  every TOUCH_SECONDS, or a tenth of the idle time when that is shorter),
- BULLETIN_SESSION_LIFETIME_SECONDS after sign-in (`expires_at`), whatever happens,
- when revoked: signing out ends it; disabling its user or changing the user's password
  ends every session of that user (app/people/users.py), for good.

The CSRF token of a session is derived from its secret (HMAC-SHA256 under a fixed
context), so nothing more is stored, the server recomputes it from the cookie it is sent,
and a page learns it only from the session's answers (the cookie itself is out of reach
of scripts). What requests must carry it is app/api/deps.py's business.

Signing in, failing to and signing out are audited (`user.signed_in`, `user.sign_in_failed`,
`user.signed_out`); a failure records the login as typed (casefolded), never whether a user
has it, and the answer to the client is the same 401 for a wrong password, an unknown login
and a disabled user, in the same time (UserStore.check_password).
"""

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.config import Settings
from app.db import Database
from app.errors import Unauthorised
from app.models import SignInSession, User, utc_now
from app.people import principals
from app.people.roles import Principal
from app.people.sign_in_limits import SignInLimits
from app.people.users import UserStore, login_key

# A cookie value longer than any secret this server makes is not looked up.
MAX_SECRET_CHARS = 64
# The longest time between two writes of a session's `last_seen_at`.
TOUCH_SECONDS = 60.0
_CSRF_CONTEXT = b"bulletin csrf token v1"


class SignInFailed(Unauthorised):
    code = "sign_in_failed"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    """The CSRF token of the session with this secret."""
    digest = hmac.new(secret.encode(), _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_matches(secret: str, sent: str | None) -> bool:
    """Whether `sent` is the session's CSRF token, compared in constant time."""
    if not sent:
        return False
    return hmac.compare_digest(sent.encode(), csrf_token(secret).encode())


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A live session: its row's id, its user, the principal it acts as, and its times."""

    session_id: int
    user: User
    principal: Principal
    created_at: datetime
    expires_at: datetime
    idle_expires_at: datetime

    @property
    def ends_at(self) -> datetime:
        """When it ends unless a request comes first."""
        return min(self.expires_at, self.idle_expires_at)


class SessionStore:
    """Signs in and out, and finds the live session a cookie names."""

    def __init__(self, database: Database, settings: Settings, limits: SignInLimits) -> None:
        self.database = database
        self.users = UserStore(database)
        self.limits = limits
        self.idle = timedelta(seconds=settings.session_idle_seconds)
        self.lifetime = timedelta(seconds=settings.session_lifetime_seconds)
        self.touch_every = timedelta(seconds=min(TOUCH_SECONDS, settings.session_idle_seconds / 10))

    async def sign_in(
        self, login: str, password: str, address: str | None, replacing: str | None = None
    ) -> tuple[SignedIn, str]:
        """A new session for the user with this login and password, and its secret.

        Raises RateLimited past the sign-in limits and SignInFailed (401, the same for every
        reason) otherwise. `replacing` is the secret of the session this browser had, which
        ends now if it is still live (one browser, one session).
        """
        await self.limits.admit(login, address)
        user = await self.users.check_password(login, password)
        if user is None:
            await self._record_failure(login, address)
            raise SignInFailed("The login or the password is wrong.")
        await self.limits.succeeded(login)
        secret = new_secret()
        now = utc_now()
        async with self.database.write_session() as session:
            stored = await session.get(User, user.id)
            if stored is None or stored.disabled_at is not None:  # disabled a moment ago
                raise SignInFailed("The login or the password is wrong.")
            row = SignInSession(
                user_id=stored.id,
                secret_hash=hash_secret(secret),
                created_at=now,
                last_seen_at=now,
                expires_at=now + self.lifetime,
                address=address,
            )
            session.add(row)
            await session.flush()
            principal = await principals.for_user(session, stored, via="session", address=address)
            if replacing is not None:
                await self._end(session, replacing, "replaced", principal, now)
            # What ended long enough ago that nothing needs it: this user's rows stay few.
            await session.execute(
                delete(SignInSession).where(
                    SignInSession.user_id == stored.id,
                    SignInSession.id != row.id,
                    or_(
                        SignInSession.revoked_at.is_not(None),
                        SignInSession.expires_at <= now,
                        SignInSession.last_seen_at <= now - self.idle,
                    ),
                )
            )
            audit.record_sign_in(session, principal)
            signed_in = self._signed_in(row, stored, principal)
        return signed_in, secret

    async def authenticate(
        self, secret: str, address: str | None, *, touch: bool = True
    ) -> SignedIn | None:
        """The live session with this secret, if there is one; with `touch`, a request seen
        now keeps it from going idle (an open stream checking on itself does not)."""
        if not secret or len(secret) > MAX_SECRET_CHARS:
            return None
        now = utc_now()
        async with self.database.read_session() as session:
            row = await session.scalar(
                select(SignInSession).where(SignInSession.secret_hash == hash_secret(secret))
            )
            if row is None or not self._live(row, now):
                return None
            user = await session.get(User, row.user_id)
            if user is None or user.disabled_at is not None:
                return None
            principal = await principals.for_user(session, user, via="session", address=address)
        if touch and now - row.last_seen_at >= self.touch_every:
            async with self.database.write_session() as session:
                await session.execute(
                    update(SignInSession)
                    .where(SignInSession.id == row.id, SignInSession.last_seen_at < now)
                    .values(last_seen_at=now)
                )
            row.last_seen_at = now
        return self._signed_in(row, user, principal)

    async def sign_out(self, secret: str, actor: Principal) -> bool:
        """End the session with this secret; whether it was live."""
        async with self.database.write_session() as session:
            return await self._end(session, secret, "signed_out", actor, utc_now())

    async def _end(
        self, session: AsyncSession, secret: str, reason: str, actor: Principal, now: datetime
    ) -> bool:
        row = await session.scalar(
            select(SignInSession).where(SignInSession.secret_hash == hash_secret(secret))
        )
        if row is None or not self._live(row, now):
            return False
        row.revoked_at = now
        row.revoked_reason = reason
        audit.record_sign_out(session, actor, user_id=row.user_id)
        return True

    def _live(self, row: SignInSession, now: datetime) -> bool:
        if row.revoked_at is not None:
            return False
        return now < row.expires_at and now < row.last_seen_at + self.idle

    def _signed_in(self, row: SignInSession, user: User, principal: Principal) -> SignedIn:
        return SignedIn(
            session_id=row.id,
            user=user,
            principal=principal,
            created_at=row.created_at,
            expires_at=row.expires_at,
            idle_expires_at=row.last_seen_at + self.idle,
        )

    async def _record_failure(self, login: str, address: str | None) -> None:
        async with self.database.write_session() as session:
            audit.record(
                session,
                Principal(via="session", address=address),
                "user.sign_in_failed",
                details={"login": login_key(login)[:320]},
            )
