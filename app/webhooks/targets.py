"""Where webhooks may point: public http(s) addresses only, checked after DNS resolution.

A webhook URL is checked when it is registered and again before every delivery, by the
checks every outgoing request shares (app/outgoing.py); this module adds the webhook's
own wording.
"""

import httpx

from app import outgoing
from app.outgoing import Target, TargetRefused, refusal_reason

__all__ = ["Target", "TargetRefused", "parse_webhook_url", "refusal_reason", "resolve_target"]


def parse_webhook_url(url: str) -> httpx.URL:
    """The URL, if it is absolute http(s) with a host and no credentials; TargetRefused if not."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise TargetRefused("it is not a valid URL") from error
    if parsed.scheme not in {"http", "https"}:
        raise TargetRefused("only http and https URLs can receive webhooks")
    if parsed.userinfo:
        raise TargetRefused("credentials in the URL are not stored; receivers verify signatures")
    return outgoing.parse_outgoing_url(url)


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Resolve the webhook URL's host and check every address; TargetRefused names the problem.

    Resolving can take a while: callers bound it with a timeout.
    """
    parsed = parse_webhook_url(url)
    return await outgoing.resolve_target(
        url, allow_private=allow_private, parsed=parsed, what="webhooks"
    )
