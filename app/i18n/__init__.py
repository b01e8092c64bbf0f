"""A blog's language: its words from a gettext message catalogue (web/messages/*.po, read
with Babel at start), its plural rules and writing direction, and its dates and times as
its locale writes them in the blog's time zone (languages.py)."""
