import asyncio

import httpx

from tests.support.factories import read_log

ENTRIES = "/api/v1/blogs/vote-night/entries"
ENTRY = {"headline": "Polls close", "body": "<p>Counting begins.</p>"}


async def test_retry_with_same_idempotency_key_returns_original_entry(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    headers = {**publish_headers, "Idempotency-Key": "desk-7f3a"}
    first = await client.post(ENTRIES, json=ENTRY, headers=headers)
    retry = await client.post(ENTRIES, json=ENTRY, headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len((await client.get(ENTRIES)).json()["items"]) == 1
    assert len(await read_log(client, "vote-night")) == 1


async def test_concurrent_retries_with_one_key_store_one_entry(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    headers = {**publish_headers, "Idempotency-Key": "burst-1"}
    responses = await asyncio.gather(
        *(client.post(ENTRIES, json=ENTRY, headers=headers) for _ in range(8))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(await read_log(client, "vote-night")) == 1


async def test_reusing_a_key_for_a_different_entry_is_refused(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    headers = {**publish_headers, "Idempotency-Key": "desk-7f3a"}
    await client.post(ENTRIES, json=ENTRY, headers=headers)
    response = await client.post(ENTRIES, json={**ENTRY, "headline": "Other"}, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert len(await read_log(client, "vote-night")) == 1


async def test_requests_without_a_key_are_not_deduplicated(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    for _ in range(2):
        await client.post(ENTRIES, json=ENTRY, headers=publish_headers)
    assert len((await client.get(ENTRIES)).json()["items"]) == 2
