import httpx
import pytest

from tests.support.factories import ADMIN, read_log

BLOG = "/api/v1/blogs/vote-night"


async def test_a_blog_is_in_english_until_its_newsroom_chooses_a_language(
    client: httpx.AsyncClient, blog: dict
) -> None:
    assert blog["language"] == "en"
    response = await client.patch(BLOG, json={"language": "en-gb"}, headers=ADMIN)
    assert response.status_code == 200
    # Stored and returned as Babel writes the tag.
    assert response.json()["language"] == "en-GB"
    assert (await client.get(BLOG)).json()["language"] == "en-GB"
    [event] = await read_log(client, "vote-night")
    assert event["type"] == "blog.updated"
    assert event["details"]["language"] == "en-GB"


@pytest.mark.parametrize("tag", ["xx", "klingon", "en_GB", "", "a" * 36, 7])
async def test_a_language_babel_does_not_know_is_refused_and_nothing_is_written(
    client: httpx.AsyncClient, blog: dict, tag: object
) -> None:
    response = await client.patch(BLOG, json={"language": tag, "title": "Changed"}, headers=ADMIN)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/json"
    assert "language" in response.json()["error"]["fields"]
    after = (await client.get(BLOG)).json()
    assert (after["language"], after["title"], after["head_seq"]) == ("en", "Vote night", 0)


async def test_the_api_documents_a_blogs_language(client: httpx.AsyncClient) -> None:
    schemas = (await client.get("/openapi.json")).json()["components"]["schemas"]
    assert schemas["BlogPublic"]["properties"]["language"]["type"] == "string"
    language = schemas["BlogUpdate"]["properties"]["language"]
    assert "BCP 47" in str(language)
    # The tags Babel knows, as the API writes them: clients (and the contract test) send those.
    assert {"en", "en-GB", "ar", "fr"} <= set(language["enum"]) and "xx" not in language["enum"]


async def test_a_blog_can_be_created_in_its_language_and_a_bad_one_creates_nothing(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/api/v1/blogs",
        json={"slug": "gulf-storm", "title": "Storm", "language": "ar"},
        headers=ADMIN,
    )
    assert created.status_code == 201
    assert created.json()["language"] == "ar"
    page = await client.get("/blogs/gulf-storm")
    assert '<html lang="ar" dir="rtl"' in page.text
    refused = await client.post(
        "/api/v1/blogs", json={"slug": "bad-tongue", "title": "X", "language": "xx"}, headers=ADMIN
    )
    assert refused.status_code == 422
    assert "language" in refused.json()["error"]["fields"]
    assert (await client.get("/api/v1/blogs/bad-tongue")).status_code == 404
