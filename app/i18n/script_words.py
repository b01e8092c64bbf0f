"""The words bulletin.js and reader.js show, in the blog's language.

The scripts hold no words of their own: the page (or the embed, or the card) carries these
on its live root as `data-bulletin-words`, JSON. A message with a count comes as one text
per plural category of the locale (CLDR's, as the browser's Intl.PluralRules names them),
with the count as `%(num)s`; other placeholders are `%(name)s` too. Babel extracts the
messages from here as from the templates (babel.cfg, with `plural_words` as a keyword).
"""

import functools
from typing import Any

from app.i18n.languages import Language


@functools.cache
def script_words(language: Language) -> dict[str, Any]:
    _ = language.gettext
    return {
        # The blog's status, and the connection's (bulletin.js).
        "live": _("Live"),
        "ended": _("Coverage ended"),
        "connecting": _("Reconnecting…"),
        "connected": _("Live"),
        "disconnected": _("Offline"),
        "stopped": _("Updates stopped; reload the page"),
        "reload": _("Reload the page"),
        "new": language.plural_words("%(num)s new update", "%(num)s new updates"),
        # Under a minute; longer ago, the browser's Intl.RelativeTimeFormat speaks.
        "now": _("just now"),
        # reader.js
        "copied": _("Link copied"),
        "share": _("Share"),
        "all": language.plural_words("Show all %(num)s", "Show all %(num)s"),
        "fewer": _("Show fewer"),
        "reading": language.plural_words("%(num)s reading now", "%(num)s reading now"),
        "announce": _("New update: %(headline)s"),
        "announced": _("New update"),
        # Catch-up since the last visit: "14 updates since 09:12, 3 key events."
        "since": language.plural_words(
            "%(num)s update since %(time)s", "%(num)s updates since %(time)s"
        ),
        "more": language.plural_words(
            "More than %(num)s update since %(time)s", "More than %(num)s updates since %(time)s"
        ),
        "keys": language.plural_words(", %(num)s key event", ", %(num)s key events"),
        "jump": _("Jump to the first you missed"),
    }
