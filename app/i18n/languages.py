"""The languages a blog may be written in, and what each one says and writes.

A blog's `language` is a BCP 47 tag that Babel knows ("en", "en-GB", "ar", "fr-CA"). Its
words come from the catalogue of its base language (web/messages/fr.po for "fr-CA"), or are
English where none is shipped; its dates and times follow its own locale ("19:11" in
en-GB, "7:11 PM" in en). The .po files are read and compiled in memory at start: there is
no compile step, and a catalogue edited is read by the next start.
"""

import gettext
from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_skeleton, format_time
from babel.localedata import locale_identifiers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

MESSAGES_DIR = Path(__file__).resolve().parent.parent.parent / "web" / "messages"
# The language the templates are written in: it needs no catalogue.
SOURCE_LANGUAGE = "en"


def parse_language(tag: str) -> str:
    """The tag as Babel writes it ("en-gb" → "en-GB"); ValueError for a tag it does not know."""
    try:
        locale = Locale.parse(tag, sep="-")
    except (ValueError, UnknownLocaleError) as error:
        raise ValueError(
            "must be a BCP 47 language tag such as 'en', 'en-GB', 'ar' or 'fr'"
        ) from error
    parts = (locale.language, locale.script, locale.territory, locale.variant)
    return "-".join(part for part in parts if part)


def known_languages() -> list[str]:
    """Every tag Babel has locale data for, as parse_language writes it (for the API schema:
    clients and contract tests then know which tags are taken)."""
    return sorted(parse_language(name.replace("_", "-")) for name in locale_identifiers())


def read_catalogue(path: Path) -> Translations:
    """A .po file as gettext translations, compiled in memory (fuzzy entries left out)."""
    with path.open("rb") as po_file:
        catalogue = read_po(po_file)
    compiled = BytesIO()
    write_mo(compiled, catalogue)
    compiled.seek(0)
    return Translations(compiled)


@dataclass(frozen=True)
class Language:
    """One blog language: its words (gettext), its direction and its way with time."""

    tag: str
    locale: Locale
    translations: gettext.NullTranslations

    @property
    def direction(self) -> Literal["ltr", "rtl"]:
        # From the locale's data (CLDR's character order), not from a list of our own.
        return "rtl" if self.locale.text_direction == "rtl" else "ltr"

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.translations.ngettext(singular, plural, count)

    def plural_words(self, singular: str, plural: str) -> dict[str, str]:
        """The message for each of the locale's plural categories (CLDR's "zero", "one",
        "two", "few", "many", "other"), for a browser to choose by Intl.PluralRules; the
        count stays as `%(num)s`."""
        words: dict[str, str] = {}
        # Every category of every CLDR locale shows up below 200, but for French's "many"
        # (a million, as "N reading now" may say).
        for count in [*range(200), 1_000_000]:
            category = self.locale.plural_form(count)
            if category not in words:
                words[category] = self.ngettext(singular, plural, count)
        return words

    def clock(self, moment: datetime, time_zone: str) -> str:
        """'19:11' or '7:11 PM': the locale's short time in the blog's zone."""
        return format_time(moment.astimezone(ZoneInfo(time_zone)), "short", locale=self.locale)

    def day(self, moment: datetime, time_zone: str) -> str:
        """'Thursday, December 3, 2026': the local day, for the divider before its entries."""
        return format_date(moment.astimezone(ZoneInfo(time_zone)), "full", locale=self.locale)

    def full(self, moment: datetime, time_zone: str) -> str:
        """'Thursday, December 3, 2026, 7:11 PM WET': day, time and zone, for a title."""
        local = moment.astimezone(ZoneInfo(time_zone))
        day = format_date(local, "full", locale=self.locale)
        return f"{self._join(day, local)} {local.tzname()}"

    def later(self, moment: datetime, earlier: datetime, time_zone: str) -> str:
        """The time alone on the local day of `earlier` ('14:32'); with its day otherwise
        ('Dec 4, 14:32'): for "Updated" and correction notes."""
        zone = ZoneInfo(time_zone)
        local = moment.astimezone(zone)
        if local.date() == earlier.astimezone(zone).date():
            return self.clock(moment, time_zone)
        return self._join(format_skeleton("MMMd", local, locale=self.locale), local)

    def _join(self, day: str, local: datetime) -> str:
        # The locale's own way to put a date and a time together: "{1}, {0}", "{1} 'à' {0}".
        pattern = str(self.locale.datetime_formats["medium"]).replace("'", "")
        time = format_time(local, "short", locale=self.locale)
        return pattern.replace("{1}", day).replace("{0}", time)


def local_day(moment: datetime, time_zone: str) -> date:
    """The day `moment` falls on in the blog's zone: entries of different days get a divider."""
    return moment.astimezone(ZoneInfo(time_zone)).date()


class Languages:
    """Every shipped catalogue, read once; a blog's Language by its tag."""

    def __init__(self, messages_dir: Path = MESSAGES_DIR) -> None:
        self.catalogues: dict[str, gettext.NullTranslations] = {
            path.stem: read_catalogue(path) for path in sorted(messages_dir.glob("*.po"))
        }
        self._languages: dict[str, Language] = {}

    def get(self, tag: str) -> Language:
        """The blog's language; a tag Babel no longer knows reads as English."""
        language = self._languages.get(tag)
        if language is None:
            try:
                locale = Locale.parse(tag, sep="-")
            except (ValueError, UnknownLocaleError):
                locale = Locale.parse(SOURCE_LANGUAGE)
            translations = self.catalogues.get(locale.language) or gettext.NullTranslations()
            language = self._languages[tag] = Language(tag, locale, translations)
        return language
