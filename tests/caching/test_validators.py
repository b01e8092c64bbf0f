"""Validators: the ETag names the head seq; Last-Modified waits out a safe margin."""

from datetime import UTC, datetime, timedelta

from app import caching


def test_last_modified_waits_a_safe_margin_after_the_second_of_the_change() -> None:
    changed_at = datetime(2026, 3, 4, 12, 0, 7, 250_000, tzinfo=UTC)
    version = caching.BlogVersion(seq=4, live=True, changed_at=changed_at, epoch="1.0")
    checked = caching.validators(version, "/blogs/vote-night/feed.atom")
    end_of_second = datetime(2026, 3, 4, 12, 0, 8, tzinfo=UTC)

    # A change stamped before its commit, or by a clock behind ours, may still be dated
    # inside the second just over: no date may name this state yet.
    during = checked.headers(now=changed_at + timedelta(milliseconds=500))
    just_after = checked.headers(now=end_of_second)
    almost = checked.headers(
        now=end_of_second + caching.LAST_MODIFIED_DELAY - timedelta(milliseconds=1)
    )
    after = checked.headers(now=end_of_second + caching.LAST_MODIFIED_DELAY)

    assert timedelta(seconds=3) <= caching.LAST_MODIFIED_DELAY
    assert "Last-Modified" not in during and "Last-Modified" not in just_after
    assert "Last-Modified" not in almost
    assert after["Last-Modified"] == "Wed, 04 Mar 2026 12:00:08 GMT"
    assert during["ETag"] == after["ETag"] and checked.etag.endswith('-4"')
