"""Passwords, hashed with Argon2id (argon2-cffi's PasswordHasher and its defaults).

Hashing takes some 0.2 s of CPU and 64 MiB by design, so it runs on a thread, never on
the event loop. A hash made with older parameters is replaced after the next successful
check (`check_needs_rehash`), so raising the defaults reaches every account in time.
"""

import asyncio
import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Stated in the API's schema and in the README.
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1000

_hasher = PasswordHasher()


@functools.cache
def _unknown_login_hash() -> str:
    """Checked against when a login is unknown, so that the answer takes as long either way."""
    return _hasher.hash("a password that belongs to no account")


def check_password_rule(password: str) -> str:
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ValueError(f"must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters long")
    return password


async def hash_password(password: str) -> str:
    """The Argon2id hash of a password, in its PHC string form."""
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    try:
        _hasher.verify(stored_hash or _unknown_login_hash(), password)
    except (VerificationError, InvalidHashError):
        return False, None
    if stored_hash is None:
        return False, None
    if _hasher.check_needs_rehash(stored_hash):
        return True, _hasher.hash(password)
    return True, None


async def verify_password(stored_hash: str | None, password: str) -> tuple[bool, str | None]:
    """Whether the password matches the hash, and a new hash to store if the old one was
    made with weaker parameters. `stored_hash=None` (no such account) costs the same time
    and never matches."""
    return await asyncio.to_thread(_verify, stored_hash, password)
