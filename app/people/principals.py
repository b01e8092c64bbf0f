"""From a token to a `Principal`: the user it acts as, with that user's roles, narrowed.

- A token of a user acts as that user, with the user's roles: its memberships, or, for an
  admin user, everything.
- A token of no user (every token made before users existed, and BULLETIN_ADMIN_TOKEN) is
  a legacy token: scope `admin` acts as a global admin, scope `publish` as an editor on
  every blog.
- Either may be narrowed to some blogs (it acts on those only) and to a maximum role (it
  never acts above it), so a token can never do more than its user or its scope. A
  narrowed admin is no longer an admin: it acts as an owner (or its maximum role) of the
  blogs it names, or of every blog if it names none.
- A disabled user's tokens do not work (401), and work again once the user is enabled.

A sign-in session will make its principal the same way, from its user (`for_user`).
"""

from collections.abc import Mapping
from types import MappingProxyType
from typing import cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import Unauthorised
from app.models import Membership, Token, TokenBlog, User
from app.people.roles import Principal, Role, Via, capped, highest


async def for_token(
    session: AsyncSession,
    token: Token,
    address: str | None,
    blog_ids: frozenset[int] | None = None,
) -> Principal:
    """The principal a live token acts as; 401 when its user is disabled. `blog_ids`: the
    blogs it is narrowed to, if the caller read them with it (`TokenStore.find_narrowed`)."""
    if blog_ids is None:
        blog_ids = frozenset(
            await session.scalars(select(TokenBlog.blog_id).where(TokenBlog.token_id == token.id))
        )
    if token.user_id is None:
        admin = token.scope == "admin"
        every_blog: Role | None = None if admin else "editor"
        return _narrowed(
            Principal(
                via="token",
                token_id=token.id,
                is_admin=admin,
                every_blog=every_blog,
                address=address,
            ),
            blog_ids,
            token.max_role,
        )
    user = await session.get(User, token.user_id)
    if user is None or user.disabled_at is not None:
        raise Unauthorised("The token's user is disabled.")
    principal = await for_user(session, user, via="token", token_id=token.id, address=address)
    return _narrowed(principal, blog_ids, token.max_role)


async def for_user(
    session: AsyncSession,
    user: User,
    *,
    via: Via,
    token_id: int | None = None,
    address: str | None = None,
) -> Principal:
    """The principal of an active user: an admin, or its roles on the blogs it belongs to."""
    roles: dict[int, Role] = {}
    if not user.admin:
        memberships = await session.execute(
            select(Membership.blog_id, Membership.role).where(Membership.user_id == user.id)
        )
        roles = {blog_id: cast(Role, role) for blog_id, role in memberships}
    return Principal(
        via=via,
        token_id=token_id,
        user_id=user.id,
        name=user.name,
        is_admin=user.admin,
        blog_roles=MappingProxyType(roles),
        address=address,
    )


def _narrowed(principal: Principal, blog_ids: frozenset[int], max_role: str | None) -> Principal:
    """The principal acting only on `blog_ids` (if any), never above `max_role`."""
    if not blog_ids and max_role is None:
        return principal
    every_blog = capped("owner" if principal.is_admin else principal.every_blog, max_role)
    roles: Mapping[int, Role] = {
        blog_id: held
        for blog_id, role in principal.blog_roles.items()
        if (held := capped(role, max_role)) is not None
    }
    if blog_ids:
        roles = {
            blog_id: held
            for blog_id in blog_ids
            if (held := highest(every_blog, roles.get(blog_id))) is not None
        }
        every_blog = None
    return Principal(
        via=principal.via,
        token_id=principal.token_id,
        user_id=principal.user_id,
        name=principal.name,
        is_admin=False,
        every_blog=every_blog,
        blog_roles=MappingProxyType(dict(roles)),
        address=principal.address,
    )
