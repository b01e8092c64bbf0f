"""requirements.lock pins everything Bulletin installs, on every Python 3.11 release."""

import re
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"
# The first and the newest 3.11 releases: markers such as redis-py's
# `python_full_version < "3.11.3"` (async-timeout) pull in more on the early ones.
PYTHONS = ["3.11.0", "3.11.2", "3.11.9"]


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line):
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def needed(python: str) -> set[str]:
    """Every distribution `pip install -e '.[dev]'` installs on that Python (here, on this OS)."""
    environment = {**default_environment(), "python_full_version": python}
    seen: set[str] = set()
    pending = [("bulletin", frozenset({"dev"}))]
    while pending:
        name, extras = pending.pop()
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed on this Python: its own needs are checked where it is
        for text in requirements:
            requirement = Requirement(text)
            marker = requirement.marker
            wanted = (
                marker is None
                or any(marker.evaluate({**environment, "extra": extra}) for extra in extras)
                or marker.evaluate({**environment, "extra": ""})
            )
            key = canonicalize_name(requirement.name)
            if wanted and key not in seen:
                seen.add(key)
                pending.append((requirement.name, frozenset(requirement.extras)))
    return seen


def test_the_lock_pins_every_package_installed_on_any_python_3_11() -> None:
    pins = locked()
    for python in PYTHONS:
        missing = needed(python) - pins.keys()
        assert not missing, f"requirements.lock lacks {sorted(missing)} for Python {python}"


def test_installed_versions_are_the_locked_ones() -> None:
    pins = locked()
    for key in needed("3.11.9"):
        assert metadata.version(key) == pins[key], key
