"""Roles per blog, and `Principal`: who is asking, and with which roles.

A principal is made per request from its credentials (app/people/principals.py: a token
today; a sign-in session later makes the same object) and is all the permission checks
and the audit log need to know of the caller.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Role = Literal["contributor", "editor", "owner"]
# Lowest first: each role may do everything the ones before it may.
ROLES: tuple[Role, ...] = ("contributor", "editor", "owner")
_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES, start=1)}

# How a principal came to act, as the audit log records it.
# "scheduler": a held or scheduled publish going out, on behalf of who scheduled it.
Via = Literal["token", "session", "command line", "system", "scheduler"]


def at_least(held: str | None, needed: Role) -> bool:
    """Whether a role (or none) is `needed` or higher."""
    return held is not None and _RANK.get(held, 0) >= _RANK[needed]


def highest(*roles: Role | None) -> Role | None:
    best: Role | None = None
    for role in roles:
        if role is not None and (best is None or _RANK[role] > _RANK[best]):
            best = role
    return best


def capped(role: Role | None, cap: str | None) -> Role | None:
    """A role held, lowered to `cap` (a token's maximum role) when it is higher."""
    if role is None or cap is None or _RANK[role] <= _RANK.get(cap, 0):
        return role
    return next((held for held in ROLES if held == cap), None)


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of one request: a user acting through a token (or, later, a session),
    a legacy token of no user, or Bulletin itself (the command line, the demo).

    `blog_roles` and `every_blog` are the roles after the token's narrowing, so a check
    reads them as they are: `role_on(blog_id)` is what this request may act as there.
    """

    via: Via
    token_id: int | None = None
    user_id: int | None = None
    # The user's name: the byline of an entry written without authors.
    name: str | None = None
    is_admin: bool = False
    # A role held on every blog (a legacy `publish` token is an editor everywhere).
    every_blog: Role | None = None
    blog_roles: Mapping[int, Role] = field(default_factory=lambda: MappingProxyType({}))
    # The client's address, as the connection (or a trusted proxy) gave it.
    address: str | None = None

    def role_on(self, blog_id: int) -> Role | None:
        """The role this principal acts with on the blog; an admin is an owner of each."""
        if self.is_admin:
            return "owner"
        return highest(self.every_blog, self.blog_roles.get(blog_id))


# Bulletin acting on its own behalf: the demo loader, and callers of the write path that
# check permissions themselves. Recorded in the audit log with no user or token.
SYSTEM = Principal(via="system", is_admin=True)
# An operator at the `bulletin` command line, who holds the database itself.
COMMAND_LINE = Principal(via="command line", is_admin=True)
