import httpx

from tests.support.factories import ADMIN, create_blog, read_log


async def test_admin_creates_a_blog_with_every_field(client: httpx.AsyncClient) -> None:
    await create_blog(client, "day-one", "Day one")
    response = await client.post(
        "/api/v1/blogs",
        json={
            "slug": "day-two",
            "title": "Day two",
            "summary": "<p>The <em>second</em> day.</p>",
            "timezone": "Europe/Berlin",
            "coverage_start": "2026-03-04T06:00:00+01:00",
            "topics": ["Elections", "Berlin"],
            "previous_slug": "day-one",
        },
        headers=ADMIN,
    )
    assert response.status_code == 201
    blog = response.json()
    assert blog["slug"] == "day-two"
    assert blog["summary"] == "<p>The <em>second</em> day.</p>"
    assert blog["status"] == "live"
    assert blog["timezone"] == "Europe/Berlin"
    assert blog["coverage_start"] == "2026-03-04T05:00:00Z"
    assert blog["coverage_end"] is None
    assert blog["topics"] == ["Elections", "Berlin"]
    assert blog["previous_slug"] == "day-one"
    assert blog["head_seq"] == 0
    assert (await client.get("/api/v1/blogs/day-two")).json() == blog


async def test_blogs_are_listed_newest_first_in_pages(client: httpx.AsyncClient) -> None:
    for number in range(5):
        await create_blog(client, f"blog-{number}", "A blog")
    first = (await client.get("/api/v1/blogs?limit=3")).json()
    assert [b["slug"] for b in first["items"]] == ["blog-4", "blog-3", "blog-2"]
    second = (await client.get(f"/api/v1/blogs?limit=3&before={first['next_cursor']}")).json()
    assert [b["slug"] for b in second["items"]] == ["blog-1", "blog-0"]
    assert second["next_cursor"] is None


async def test_ending_a_blog_logs_blog_ended_and_closes_coverage(
    client: httpx.AsyncClient, blog: dict
) -> None:
    response = await client.patch(
        "/api/v1/blogs/vote-night", json={"status": "ended"}, headers=ADMIN
    )
    assert response.status_code == 200
    ended = response.json()
    assert ended["status"] == "ended"
    assert ended["coverage_end"] is not None
    assert ended["head_seq"] == 1
    [event] = await read_log(client, "vote-night")
    assert event["type"] == "blog.ended"
    assert event["seq"] == 1
    assert event["details"]["status"] == "ended"
    assert "entry" not in event


async def test_editing_a_blog_logs_blog_updated_with_its_new_state(
    client: httpx.AsyncClient, blog: dict
) -> None:
    response = await client.patch(
        "/api/v1/blogs/vote-night",
        json={"title": "Vote night: results", "summary": "<p>Counting <script>x()</script></p>"},
        headers=ADMIN,
    )
    assert response.json()["summary"] == "<p>Counting </p>"
    [event] = await read_log(client, "vote-night")
    assert event["type"] == "blog.updated"
    assert event["details"]["title"] == "Vote night: results"


async def test_a_patch_that_changes_nothing_logs_nothing(
    client: httpx.AsyncClient, blog: dict
) -> None:
    response = await client.patch(
        "/api/v1/blogs/vote-night", json={"title": "Vote night"}, headers=ADMIN
    )
    assert response.status_code == 200
    assert response.json()["head_seq"] == 0


async def test_a_blog_cannot_continue_itself(client: httpx.AsyncClient, blog: dict) -> None:
    response = await client.patch(
        "/api/v1/blogs/vote-night", json={"previous_slug": "vote-night"}, headers=ADMIN
    )
    assert response.status_code == 422
    assert "previous_slug" in response.json()["error"]["fields"]


async def test_publish_tokens_cannot_change_blogs(
    client: httpx.AsyncClient, blog: dict, publish_headers: dict[str, str]
) -> None:
    response = await client.patch(
        "/api/v1/blogs/vote-night", json={"title": "Mine now"}, headers=publish_headers
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert (await client.get("/api/v1/blogs/vote-night")).json()["title"] == "Vote night"
