"""Checking a password, as sign-in will: Argon2id, the same answer time for unknown logins,
and old hashes replaced with the current parameters once the password is known good."""

import time

from argon2 import PasswordHasher
from fastapi import FastAPI
from sqlalchemy import select

from app.models import User
from app.people.passwords import verify_password
from app.people.roles import COMMAND_LINE
from app.people.schemas import UserCreate, UserUpdate
from app.people.users import UserStore

PASSWORD = "a long passphrase for Sam"


async def make_user(app: FastAPI) -> tuple[UserStore, User]:
    users = UserStore(app.state.services.database)
    data = UserCreate(name="Sam Vale", login="sam@news.test", password=PASSWORD)
    return users, await users.create(data, COMMAND_LINE)


async def stored_hash(app: FastAPI, user_id: int) -> str:
    async with app.state.services.database.read_session() as session:
        return await session.scalar(select(User.password_hash).where(User.id == user_id))


async def test_the_right_password_finds_the_user_whatever_the_logins_case(app: FastAPI) -> None:
    users, user = await make_user(app)
    found = await users.check_password("SAM@news.test", PASSWORD)
    assert found is not None and found.id == user.id
    assert await users.check_password("sam@news.test", PASSWORD + "!") is None
    assert await users.check_password("nobody@news.test", PASSWORD) is None


async def test_a_disabled_user_cannot_sign_in(app: FastAPI) -> None:
    users, user = await make_user(app)
    await users.update(user.id, UserUpdate(disabled=True), COMMAND_LINE)
    assert await users.check_password("sam@news.test", PASSWORD) is None


async def test_a_hash_made_with_weaker_parameters_is_replaced_after_a_good_check(
    app: FastAPI,
) -> None:
    users, user = await make_user(app)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    async with app.state.services.database.write_session() as session:
        stored = await session.get(User, user.id)
        assert stored is not None
        stored.password_hash = weak
    assert await users.check_password("sam@news.test", "wrong " + PASSWORD) is None
    assert await stored_hash(app, user.id) == weak  # a failed check changes nothing
    assert await users.check_password("sam@news.test", PASSWORD) is not None
    renewed = await stored_hash(app, user.id)
    assert renewed != weak
    assert not PasswordHasher().check_needs_rehash(renewed)
    assert PasswordHasher().verify(renewed, PASSWORD)


async def test_an_unknown_login_costs_as_much_as_a_wrong_password() -> None:
    good = PasswordHasher().hash(PASSWORD)
    await verify_password(None, PASSWORD)  # the stand-in hash is made once, on first use

    async def timed(stored: str | None) -> float:
        start = time.perf_counter()
        matches, _ = await verify_password(stored, "a wrong password, long enough")
        assert not matches
        return time.perf_counter() - start

    known = min([await timed(good) for _ in range(3)])
    unknown = min([await timed(None) for _ in range(3)])
    # Both run one Argon2id verification with the default cost (tenths of a second).
    assert 0.5 < unknown / known < 2
