"""The change log through the API: events after a seq, in pages, replayable."""

import httpx

from tests.support.factories import publish_entry, read_log

ENTRIES = "/api/v1/blogs/vote-night/entries"
EVENTS = "/api/v1/blogs/vote-night/events"


async def publish(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[int]:
    """Publish `count` entries; their ids."""
    return [
        (await publish_entry(client, headers=headers, body=f"<p>{number}</p>"))["id"]
        for number in range(count)
    ]


async def test_events_since_a_seq_are_the_later_ones_oldest_first(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await publish(client, publish_headers, 5)
    page = (await client.get(f"{EVENTS}?since=2")).json()
    assert page["blog"] == "vote-night"
    assert page["head"] == 5
    assert [e["seq"] for e in page["items"]] == [3, 4, 5]
    assert page["next_since"] == 5


async def test_events_are_paged_by_limit_and_next_since(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await publish(client, publish_headers, 5)
    first = (await client.get(f"{EVENTS}?limit=2")).json()
    assert [e["seq"] for e in first["items"]] == [1, 2]
    assert first["next_since"] == 2
    second = (await client.get(f"{EVENTS}?since={first['next_since']}&limit=2")).json()
    assert [e["seq"] for e in second["items"]] == [3, 4]


async def test_a_caught_up_reader_gets_an_empty_page_at_the_head(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    await publish(client, publish_headers, 2)
    page = (await client.get(f"{EVENTS}?since=2")).json()
    assert page == {"blog": "vote-night", "head": 2, "items": [], "next_since": 2}


async def test_replaying_the_log_rebuilds_the_blog_exactly(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    ids = await publish(client, publish_headers, 4)
    await client.patch(
        f"{ENTRIES}/{ids[1]}", json={"body": "<p>fixed</p>"}, headers=publish_headers
    )
    await client.delete(f"{ENTRIES}/{ids[2]}", headers=publish_headers)
    await client.patch(f"{ENTRIES}/{ids[3]}", json={"pinned": True}, headers=publish_headers)

    rebuilt: dict[int, dict] = {}
    for event in await read_log(client, "vote-night"):
        if event["entry"]["status"] == "deleted":  # a tombstone, also in a rewritten event
            rebuilt.pop(event["entry"]["id"], None)
        else:
            rebuilt[event["entry"]["id"]] = event["entry"]
    listed = (await client.get(ENTRIES)).json()["items"]
    assert sorted(rebuilt.values(), key=lambda e: e["id"]) == sorted(listed, key=lambda e: e["id"])
