"""The README's sync client, run as written against a real `bulletin serve` process."""

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.factories import ADMIN, Newsroom
from tests.support.servers import ServerProcess, serve_environment

README = Path(__file__).resolve().parents[2] / "README.md"
SLUG = "harbour-live"


def readme_sync_client() -> dict[str, Any]:
    """Run the README's Python block under "Feeds and sync" as a module; return its names."""
    section = README.read_text().split("\n## Feeds and sync\n", 1)[1].split("\n## ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "readme_sync_client"}
    exec(compile(code, f"{README}:Feeds and sync", "exec"), namespace)
    return namespace


@pytest.fixture
def server(database_url: str, serve: Callable[..., ServerProcess]) -> ServerProcess:
    return serve(serve_environment(database_url, migrate_on_start="true"))


def make_changes(newsroom: Newsroom) -> None:
    """Creates, edits, deletes, pins, drafts and a draft taken public, interleaved."""
    ids = [
        newsroom.publish(headline=f"Update {n}", body=f"<p>Tide {n}.</p>")["id"] for n in range(3)
    ]
    draft = newsroom.publish(headline="Embargoed", status="draft")["id"]
    for n in range(3, 15):
        ids.append(newsroom.publish(body=f"<p>Update {n}: ☃ & <em>more</em>.</p>")["id"])
        if n % 3 == 0:
            newsroom.edit(ids[n - 2], headline=f"Update {n - 2}, corrected", key_event=True)
        if n % 4 == 0:
            newsroom.delete(ids.pop(0))
    newsroom.edit(ids[-1], pinned=True)
    newsroom.edit(ids[-2], pinned=True)  # moves the pin: unpins the other
    newsroom.edit(draft, status="published")
    newsroom.edit(ids[2], status="draft")  # leaves the public log as a deletion
    newsroom.delete(ids[3])
    newsroom.edit(ids[4], body="<p>Last word.</p>")


def test_the_readme_sync_client_stays_exactly_in_step_through_creates_edits_and_deletes(
    server: ServerProcess,
) -> None:
    sync = readme_sync_client()["sync"]
    events_url = f"{server.http}/api/v1/blogs/{SLUG}/events"
    state: dict[str, Any] = {"since": 0, "etag": None, "entries": {}}
    statuses: Counter[int] = Counter()
    stop = threading.Event()
    failures: list[BaseException] = []

    def count(response: httpx.Response) -> None:
        statuses[response.status_code] += 1

    def follow() -> None:
        # The README's loop, polling often so it runs while the newsroom writes.
        with httpx.Client(timeout=10, event_hooks={"response": [count]}) as http:
            while not stop.is_set():
                try:
                    sync(http, events_url, state)
                except BaseException as error:
                    failures.append(error)
                    return
                stop.wait(0.005)

    with httpx.Client(base_url=server.http, headers=ADMIN, timeout=10) as http:
        Newsroom(http, SLUG).create_blog("Harbour, live")
        follower = threading.Thread(target=follow, name="readme-sync-client")
        follower.start()
        try:
            make_changes(Newsroom(http, SLUG))
        finally:
            stop.set()
            follower.join(timeout=30)
        assert not follower.is_alive() and failures == []

        with httpx.Client(timeout=10, event_hooks={"response": [count]}) as client:
            sync(client, events_url, state)  # the next poll after the last change
            head = http.get(f"/api/v1/blogs/{SLUG}").json()["head_seq"]
            assert state["since"] == head
            assert state["entries"] == Newsroom(http, SLUG).published_entries()

            # Caught up, the client's polls are 304s until something changes.
            sync(client, events_url, state)
            before = statuses[304]
            sync(client, events_url, state)
            assert statuses[304] == before + 1
            Newsroom(http, SLUG).publish(body="<p>One more.</p>")
            sync(client, events_url, state)
            assert state["entries"] == Newsroom(http, SLUG).published_entries()
