"""Who may upload: contributors and up on the blog. Anyone else — no token, a revoked one, a
user with no role on the blog, a member of another blog, a member whose token is narrowed to
another blog — is refused (401 or 403) and nothing is stored: no file, no row."""

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.models import StoredMedia
from tests.media.photos import phone_jpeg
from tests.support.factories import ADMIN, SLUG, create_blog
from tests.support.people import add_person

MEDIA = f"/api/v1/blogs/{SLUG}/media"


async def stored(app: FastAPI, media_dir: Path) -> tuple[int, list[Path]]:
    async with app.state.services.database.read_session() as session:
        rows = await session.scalar(select(func.count()).select_from(StoredMedia))
    files = [path for path in media_dir.rglob("*") if path.is_file()] if media_dir.exists() else []
    return rows or 0, files


async def post_photo(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    data = phone_jpeg((400, 300))
    return await client.post(MEDIA, files={"file": ("a.jpg", data, "image/jpeg")}, headers=headers)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("anonymous", 401),
        ("revoked token", 401),
        ("user without a role", 403),
        ("contributor elsewhere", 403),
        ("token narrowed to another blog", 403),
    ],
)
async def test_an_upload_without_a_role_on_the_blog_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, blog: dict, app: FastAPI, media_dir: Path, who: str, status: int
) -> None:
    await create_blog(client, "other-night", "Other night")
    headers: dict[str, str] = {}
    if who == "revoked token":
        person = await add_person(app, "Rex Old", role="contributor")
        revoked = await client.delete(f"/api/v1/tokens/{person.token_id}", headers=ADMIN)
        assert revoked.json()["revoked_at"] is not None, revoked.text
        headers = person.headers
    elif who == "user without a role":
        headers = (await add_person(app, "Nora None")).headers
    elif who == "contributor elsewhere":
        headers = (
            await add_person(app, "Olga Other", role="contributor", blog="other-night")
        ).headers
    elif who == "token narrowed to another blog":
        person = await add_person(app, "Tess Narrow", role="editor", token_blogs=("other-night",))
        headers = person.headers

    response = await post_photo(client, headers)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in {"unauthorised", "forbidden"}
    assert await stored(app, media_dir) == (0, [])


async def test_a_contributor_may_upload(
    client: httpx.AsyncClient, blog: dict, app: FastAPI, media_dir: Path
) -> None:
    person = await add_person(app, "Cara Writer", role="contributor")

    response = await post_photo(client, person.headers)

    assert response.status_code == 201, response.text
    rows, files = await stored(app, media_dir)
    assert rows == 1 and len(files) == len(response.json()["renditions"])
