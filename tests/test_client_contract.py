"""What bulletin.js and the README repeat from the server must stay equal to it.

The page hands the client its numbers (heartbeat, caps) as data-bulletin-* attributes; what a
script must know without a page (close codes, SSE event names, the default heartbeat) is
pinned here instead.
"""

import re
from pathlib import Path
from typing import get_args

from app.config import Settings
from app.realtime.codes import CloseCode, should_reconnect
from app.schemas import EventType

ROOT = Path(__file__).resolve().parent.parent
CLIENT = (ROOT / "web" / "static" / "bulletin.js").read_text()
README = (ROOT / "README.md").read_text()


def client_codes() -> dict[str, int]:
    [table] = re.findall(r"const CODES = \{([^}]*)\}", CLIENT)
    return {name: int(value) for name, value in re.findall(r"(\w+): (\d+)", table)}


def client_stops_after(code: int) -> bool:
    codes = client_codes()
    return codes["TERMINAL_MIN"] <= code <= codes["TERMINAL_MAX"]


def readme_close_codes() -> dict[int, str]:
    """The README's table of close codes: code -> what the client does."""
    rows = re.findall(r"^\| (\d{4}) \| [^|]+ \| ([^|]+) \|$", README, re.M)
    return {int(code): action.strip() for code, action in rows}


def test_the_client_names_its_close_codes_as_the_server_does() -> None:
    named = {name: code for name, code in client_codes().items() if not name.startswith("TERMINAL")}
    assert named == {name: CloseCode[name].value for name in named}
    assert {"RESET", "BLOG_NOT_FOUND"} <= named.keys()


def test_the_client_stops_after_exactly_the_codes_the_server_means_as_final() -> None:
    for code in CloseCode:
        assert client_stops_after(code) == (not should_reconnect(code)), code.name
    codes = client_codes()
    assert should_reconnect(codes["TERMINAL_MIN"] - 1)
    assert not should_reconnect(codes["TERMINAL_MIN"])
    assert not should_reconnect(codes["TERMINAL_MAX"])


def test_the_readme_lists_every_close_code_and_what_the_client_does() -> None:
    table = readme_close_codes()
    assert sorted(table) == sorted(code.value for code in CloseCode)
    for code, action in table.items():
        assert (action == "reconnect with `since`") == should_reconnect(code), code


def test_the_client_listens_for_every_event_type_the_server_sends_over_sse() -> None:
    [listed] = re.findall(r"const SSE_TYPES = \[([^\]]*)\]", CLIENT)
    assert set(re.findall(r'"([\w.]+)"', listed)) == {"hello", "heartbeat", *get_args(EventType)}


def test_a_client_without_a_page_expects_heartbeats_as_often_as_the_server_sends_them() -> None:
    [seconds] = re.findall(r"options\.heartbeatSeconds \|\| (\d+)", CLIENT)
    assert float(seconds) == Settings.model_fields["heartbeat_seconds"].default
