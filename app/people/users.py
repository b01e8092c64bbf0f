"""Users: create, list, change and disable them, and check a password (for sign-in).

Logins are unique whatever their case (casefolded). Passwords are hashed before the
write begins (on a thread) and never stored, logged or returned; a password change is
audited by its field name only. Disabling a user or changing its password ends every
sign-in session of the user (app/people/sessions.py).
"""

from datetime import datetime
from typing import Any

from pydantic import MISSING
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.db import Database
from app.errors import Conflict, NotFound
from app.models import MAX_INT, SignInSession, User, utc_now
from app.people.passwords import hash_password, verify_password
from app.people.permissions import require_admin
from app.people.roles import Principal
from app.people.schemas import UserCreate, UserPublic, UserUpdate
from app.tokens import refuse_removing_last_admin


class LoginTaken(Conflict):
    code = "login_taken"


def login_key(login: str) -> str:
    """What logins are compared by: `Sam@Example.org` and `sam@example.org` are one."""
    return login.strip().casefold()


def to_user_public(user: User) -> UserPublic:
    return UserPublic(
        id=user.id,
        name=user.name,
        login=user.login,
        admin=user.admin,
        disabled=user.disabled_at is not None,
        disabled_at=user.disabled_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


class UserStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def create(self, data: UserCreate, actor: Principal) -> User:
        require_admin(actor, "Creating users")
        password_hash = await hash_password(data.password.get_secret_value())
        key = login_key(data.login)
        taken = LoginTaken(f"There is a user with the login '{data.login}' already.")
        try:
            async with self.database.write_session() as session:
                if await session.scalar(select(User.id).where(User.login_key == key)):
                    raise taken
                now = utc_now()
                user = User(
                    name=data.name,
                    login=data.login.strip(),
                    login_key=key,
                    password_hash=password_hash,
                    password_changed_at=now,
                    admin=data.admin,
                    created_at=now,
                    updated_at=now,
                )
                session.add(user)
                await session.flush()
                audit.record(
                    session,
                    actor,
                    "user.created",
                    details={"user_id": user.id, "admin": user.admin},
                )
        except IntegrityError as error:  # two requests raced for one login
            raise taken from error
        return user

    async def list(self) -> list[User]:
        async with self.database.read_session() as session:
            return list(await session.scalars(select(User).order_by(User.id)))

    async def get(self, user_id: int) -> User:
        async with self.database.read_session() as session:
            user = await session.get(User, user_id) if 0 < user_id <= MAX_INT else None
        if user is None:
            raise NotFound(f"There is no user {user_id}.")
        return user

    async def find(self, login: str) -> User:
        async with self.database.read_session() as session:
            user = await session.scalar(select(User).where(User.login_key == login_key(login)))
        if user is None:
            raise NotFound(f"There is no user with the login '{login}'.")
        return user

    async def update(self, user_id: int, data: UserUpdate, actor: Principal) -> User:
        """Change a user's name, admin flag, password or disabled state (admin only)."""
        require_admin(actor, "Changing users")
        password_hash = (
            await hash_password(data.password.get_secret_value())
            if data.password is not MISSING
            else None
        )
        async with self.database.write_session() as session:
            user = await session.get(User, user_id) if 0 < user_id <= MAX_INT else None
            if user is None:
                raise NotFound(f"There is no user {user_id}.")
            now = utc_now()
            before: dict[str, Any] = {
                "name": user.name,
                "admin": user.admin,
                "disabled": user.disabled_at is not None,
            }
            after = dict(before)
            if data.name is not MISSING:
                after["name"] = user.name = data.name
            if data.admin is not MISSING:
                after["admin"] = user.admin = data.admin
            if data.disabled is not MISSING and data.disabled != before["disabled"]:
                after["disabled"] = data.disabled
                user.disabled_at = now if data.disabled else None
            was_admin = before["admin"] and not before["disabled"]
            if was_admin and (not after["admin"] or after["disabled"]):
                await refuse_removing_last_admin(session, user)
            details = audit.changed(before, after)
            if password_hash is not None:
                user.password_hash = password_hash
                user.password_changed_at = now
                details["fields"] = sorted([*details["fields"], "password"])
            if details["fields"]:
                user.updated_at = now
                audit.record(
                    session, actor, "user.updated", details={"user_id": user.id, **details}
                )
            if after["disabled"] and not before["disabled"]:
                await _end_sessions(session, user.id, "disabled", actor, now)
            elif password_hash is not None:
                await _end_sessions(session, user.id, "password_changed", actor, now)
        return user

    async def check_password(self, login: str, password: str) -> User | None:
        """The active user with this login and password, or None, in the same time either
        way. A hash made with older parameters is replaced. For sign-in."""
        async with self.database.read_session() as session:
            user = await session.scalar(select(User).where(User.login_key == login_key(login)))
        matches, new_hash = await verify_password(user.password_hash if user else None, password)
        if user is None or not matches or user.disabled_at is not None:
            return None
        if new_hash is not None:
            async with self.database.write_session() as session:
                stored = await session.get(User, user.id)
                if stored is not None and stored.password_hash == user.password_hash:
                    stored.password_hash = new_hash
        return user


async def _end_sessions(
    session: AsyncSession, user_id: int, reason: str, actor: Principal, now: datetime
) -> None:
    """Disabling a user, or changing its password, ends every sign-in session of the user,
    in the same transaction: the next request with any of their cookies is refused (401)."""
    ended = await session.execute(
        update(SignInSession)
        .where(
            SignInSession.user_id == user_id,
            SignInSession.revoked_at.is_(None),
            SignInSession.expires_at > now,
        )
        .values(revoked_at=now, revoked_reason=reason)
    )
    count = getattr(ended, "rowcount", 0)
    if count:
        audit.record(
            session,
            actor,
            "user.signed_out",
            details={"user_id": user_id, "reason": reason, "sessions": count},
        )
