"""The HTML allow-list for entry bodies and blog summaries (nh3, i.e. ammonia)."""

import nh3

ALLOWED_TAGS = {
    "p",
    "br",
    "a",
    "em",
    "strong",
    "i",
    "b",
    "ul",
    "ol",
    "li",
    "blockquote",
    "cite",
    "h2",
    "h3",
    "h4",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
ALLOWED_URL_SCHEMES = {"http", "https", "mailto"}


def sanitise_html(html: str) -> str:
    """Keep the allow-listed markup; drop scripts, styles, handlers and unsafe URLs."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=ALLOWED_URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
