"""People for tests: users with a role on a blog, and tokens that act as them.

`add_person` goes through Bulletin's own stores (memberships, tokens) but stores a
password hash made once with cheap Argon2 parameters, so a test can have many users
without paying some 0.2 s of hashing for each; tests of passwords use the API.
"""

from dataclasses import dataclass

from argon2 import PasswordHasher
from fastapi import FastAPI

from app.models import User, utc_now
from app.people.memberships import MembershipStore
from app.people.roles import SYSTEM, Role
from app.people.users import login_key

PASSWORD = "correct horse battery staple"
_CHEAP_HASH = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)


@dataclass(frozen=True)
class Person:
    user_id: int
    token_id: int
    name: str
    login: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


async def add_person(
    app: FastAPI,
    name: str,
    *,
    role: Role | None = None,
    blog: str = "vote-night",
    admin: bool = False,
    token_blogs: tuple[str, ...] = (),
    max_role: Role | None = None,
) -> Person:
    """A user named `name` (login `first-name@news.test`), with `role` on `blog` if given,
    and a token of theirs (narrowed to `token_blogs` and `max_role` if given)."""
    services = app.state.services
    login = f"{name.split()[0].lower()}@news.test"
    now = utc_now()
    async with services.database.write_session() as session:
        user = User(
            name=name,
            login=login,
            login_key=login_key(login),
            password_hash=_CHEAP_HASH,
            password_changed_at=now,
            admin=admin,
            created_at=now,
            updated_at=now,
        )
        session.add(user)
        await session.flush()
        user_id = user.id
    if role is not None:
        await MembershipStore(services.database).put(blog, user_id, role, SYSTEM)
    token, secret = await services.tokens.create(
        f"{name}'s tool", user_id=user_id, blogs=token_blogs, max_role=max_role
    )
    return Person(user_id, token.id, name, login, secret)
