"""The read cache's memory of answers and bodies."""

from datetime import UTC, datetime

from app import caching
from app.caching.memory import ReadCache
from tests.support.factories import SLUG


def test_the_read_cache_drops_the_least_recently_used_popular_answer_first() -> None:
    cache = ReadCache(max_answers=2, max_bodies=2)
    version = caching.BlogVersion(seq=1, live=True, changed_at=datetime.now(UTC), epoch="1.0")
    body = caching.Representation(b"{}", "application/json")

    def answer() -> caching.Answer:
        return caching.Answer(1, caching.validators(version, "v"), body)

    for url in ("a", "b", "c"):
        cache.remember_answer(SLUG, url, answer())
        assert cache.answer(SLUG, url) is not None  # asked for again: popular
        if url == "b":
            assert cache.answer(SLUG, "a") is not None  # a is now used more recently than b

    assert cache.answer(SLUG, "a") is not None
    assert cache.answer(SLUG, "c") is not None
    assert cache.answer(SLUG, "b") is None
