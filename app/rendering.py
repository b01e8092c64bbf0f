"""The one entry template, the key-events line, in the blog's language and time zone.

Pages, feeds and the `html` and `key_event_html` fields of change-log events all
render here, so a reader's page and a live update can never disagree.
"""

import re
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from app.config import DEFAULT_PUBLIC_BASE_URL
from app.cursors import entry_cursor
from app.i18n.languages import SOURCE_LANGUAGE, Languages, local_day
from app.i18n.script_words import script_words
from app.schemas import EntryPublic

WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def local_time_label(moment: datetime, time_zone: str) -> str:
    """'Mar 04, 2022, 7:46 AM EST': the moment in the blog's zone, with its abbreviation
    (for feeds, which are read in many languages; pages speak the blog's: app/i18n)."""
    local = moment.astimezone(ZoneInfo(time_zone))
    hour = local.hour % 12 or 12
    return f"{local:%b %d, %Y}, {hour}:{local:%M %p %Z}"


def absolute_url(base_url: str, url: str) -> str:
    """A URL as readers elsewhere can open it: a path on this server gets the public base."""
    return base_url.rstrip("/") + url if url.startswith("/") else url


def entry_path(slug: str, entry_id: int) -> str:
    """An entry's permalink on this server: its own page, which never moves."""
    return f"/blogs/{slug}/entries/{entry_id}"


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


_SPACES = re.compile(r"\s+")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: object) -> None:
        # Block boundaries become spaces, so "<li>one</li><li>two</li>" reads "one two".
        if tag in {"p", "br", "li", "blockquote", "h2", "h3", "h4"}:
            self.parts.append(" ")


def plain_text(html: str, limit: int | None = None) -> str:
    """The text of sanitised HTML on one line (entities decoded), cut at `limit` characters.

    For titles, descriptions and structured data: feeds, meta tags and JSON-LD.
    """
    collector = _TextCollector()
    collector.feed(html)
    collector.close()
    text = _SPACES.sub(" ", "".join(collector.parts)).strip()
    if limit is None or len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


class Renderer:
    """Renders with absolute URLs under `base_url`, so an entry's HTML shows its photos on
    a partner's page (the embed) as on Bulletin's own."""

    def __init__(
        self,
        base_url: str = DEFAULT_PUBLIC_BASE_URL,
        templates_dir: Path = WEB_DIR / "templates",
        languages: Languages | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.languages = languages or Languages()
        self.environment = Environment(
            loader=FileSystemLoader(templates_dir),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
            # {% trans %} and _(): each render passes its blog's gettext (`speaking`).
            extensions=["jinja2.ext.i18n"],
        )
        self.environment.policies["ext.i18n.trimmed"] = True
        # Templates rendered without a blog (errors, the index) speak English.
        self.environment.install_null_translations()  # type: ignore[attr-defined]
        # The index of blogs, of many languages, keeps one English label (as feeds do).
        self.environment.filters["local_time"] = local_time_label
        self.environment.filters["local_day"] = lambda moment, zone: local_day(
            moment, zone
        ).isoformat()
        self.environment.filters["utc_iso"] = utc_iso
        self.environment.filters["absolute"] = lambda url: absolute_url(self.base_url, url)
        self.environment.filters["permalink"] = lambda entry: self.permalink(entry.blog, entry.id)
        # Each entry carries the cursor of the page after it, for "Older updates" links.
        self.environment.filters["older_cursor"] = lambda entry: entry_cursor(
            entry.published_at, entry.id
        )
        self._entry_template = self.environment.get_template("partials/entry.html")
        self._key_event_template = self.environment.get_template("partials/key_event.html")

    def absolute(self, url: str) -> str:
        return absolute_url(self.base_url, url)

    def permalink(self, slug: str, entry_id: int) -> str:
        return self.base_url + entry_path(slug, entry_id)

    def speaking(self, language: str) -> dict[str, Any]:
        """What a template needs to speak the blog's `language`: its words (gettext and
        ngettext for {% trans %}), its dates and its direction."""
        spoken = self.languages.get(language)
        return {"language": spoken, "gettext": spoken.gettext, "ngettext": spoken.ngettext}

    def speaking_to_scripts(self, language: str) -> dict[str, Any]:
        """`speaking`, and the words bulletin.js and reader.js show, for the page's root."""
        return {
            **self.speaking(language),
            "script_words": script_words(self.languages.get(language)),
        }

    def render_entry(
        self,
        entry: EntryPublic,
        time_zone: str,
        first_screen: bool = False,
        language: str = SOURCE_LANGUAGE,
        show_day: bool = False,
    ) -> str:
        """The entry's HTML; `first_screen` (the page's top entry) loads its first photo at
        once rather than lazily. Events never set it: a live entry arrives on a page
        already shown, where lazy photos in view load at once. `show_day` shows its day
        divider (the first entry of a local day on a page; reader.js keeps them so)."""
        return self._entry_template.render(
            entry=entry,
            time_zone=time_zone,
            first_screen=first_screen,
            show_day=show_day,
            **self.speaking(language),
        ).strip()

    def render_key_event(
        self,
        entry: EntryPublic,
        time_zone: str,
        href: str | None = None,
        language: str = SOURCE_LANGUAGE,
    ) -> str:
        """The entry's line in the key-events list, linking to `href` (its permalink by
        default; bulletin.js scrolls instead when the entry is on the page)."""
        return self._key_event_template.render(
            entry=entry,
            time_zone=time_zone,
            href=href or self.permalink(entry.blog, entry.id),
            **self.speaking(language),
        ).strip()
