"""Members of a blog: each a user with one role there (contributor, editor or owner).

Who may read or change them (a blog's owners, and admins) is checked by the caller
(app/api/members.py, the command line); every change is audited.
"""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.db import Database
from app.errors import NotFound
from app.models import MAX_INT, Blog, Membership, User, utc_now
from app.people.roles import Principal, Role
from app.people.schemas import MemberPublic
from app.queries import find_blog


def to_member_public(membership: Membership, user: User, blog: Blog) -> MemberPublic:
    return MemberPublic(
        blog=blog.slug,
        user_id=user.id,
        name=user.name,
        login=user.login,
        role=membership.role,  # type: ignore[arg-type]
        disabled=user.disabled_at is not None,
        created_at=membership.created_at,
        updated_at=membership.updated_at,
    )


class MembershipStore:
    def __init__(self, database: Database) -> None:
        self.database = database

    async def list(self, slug: str) -> list[MemberPublic]:
        async with self.database.read_session() as session:
            blog = await find_blog(session, slug)
            rows = await session.execute(
                select(Membership, User)
                .join(User, User.id == Membership.user_id)
                .where(Membership.blog_id == blog.id)
                .order_by(User.id)
            )
            return [to_member_public(membership, user, blog) for membership, user in rows]

    async def get(self, slug: str, user_id: int) -> MemberPublic:
        async with self.database.read_session() as session:
            blog = await find_blog(session, slug)
            user = await _find_user(session, user_id)
            membership = await session.get(Membership, (user.id, blog.id))
            if membership is None:
                raise NotFound(f"User {user_id} is not a member of blog '{slug}'.")
            return to_member_public(membership, user, blog)

    async def put(
        self, slug: str, user_id: int, role: Role, actor: Principal
    ) -> tuple[MemberPublic, bool]:
        """Give the user this role on the blog; returns the member and whether it is new."""
        async with self.database.write_session() as session:
            blog = await find_blog(session, slug)
            user = await _find_user(session, user_id)
            membership = await session.get(Membership, (user.id, blog.id))
            now = utc_now()
            created = membership is None
            if membership is None:
                membership = Membership(
                    user_id=user.id, blog_id=blog.id, role=role, created_at=now, updated_at=now
                )
                session.add(membership)
                audit.record(
                    session,
                    actor,
                    "member.added",
                    blog_id=blog.id,
                    details={"user_id": user.id, "role": role},
                )
            elif membership.role != role:
                audit.record(
                    session,
                    actor,
                    "member.changed",
                    blog_id=blog.id,
                    details={"user_id": user.id, "role": {"from": membership.role, "to": role}},
                )
                membership.role = role
                membership.updated_at = now
            await session.flush()
            return to_member_public(membership, user, blog), created

    async def remove(self, slug: str, user_id: int, actor: Principal) -> None:
        async with self.database.write_session() as session:
            blog = await find_blog(session, slug)
            user = await _find_user(session, user_id)
            membership = await session.get(Membership, (user.id, blog.id))
            if membership is None:
                raise NotFound(f"User {user_id} is not a member of blog '{slug}'.")
            await session.delete(membership)
            audit.record(
                session,
                actor,
                "member.removed",
                blog_id=blog.id,
                details={"user_id": user.id, "role": membership.role},
            )


async def _find_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id) if 0 < user_id <= MAX_INT else None
    if user is None:
        raise NotFound(f"There is no user {user_id}.")
    return user
