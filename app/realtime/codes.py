"""Close codes for streams, in one table. 4000-4499: reconnect and resume; 4500-4999: do not.

bulletin.js's CODES and the README's table repeat them; tests/test_client_contract.py fails
when either drifts from this table.
"""

from enum import IntEnum


class CloseCode(IntEnum):
    # Standard codes the client treats as "reconnect with since".
    GOING_AWAY = 1001
    SERVICE_RESTART = 1012
    INTERNAL_ERROR = 1011
    # Reconnect and resume from your last seq.
    RESUME = 4000  # you fell behind: your buffer passed its limit
    # You sent subscribe and unsubscribe messages faster than a connection may. A browser that
    # trips it recovers on its back-off; a flood gains nothing from reconnecting, since
    # connections per address are limited already.
    TOO_MANY_MESSAGES = 4008
    # Terminal: reconnecting with the same request cannot succeed.
    BLOG_NOT_FOUND = 4504
    RESET = 4509  # your since is ahead of this blog's log: drop your state and reload
    INVALID_REQUEST = 4500  # malformed since
    READERS_DO_NOT_SEND = 4501  # the stream is one-way; the client sent a message


def should_reconnect(code: int) -> bool:
    """Whether a client resumes with its last seq after the server closed with `code`."""
    reconnecting = (CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR, CloseCode.SERVICE_RESTART)
    return code in reconnecting or 4000 <= code < 4500
