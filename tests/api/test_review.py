"""Review: a contributor's entry goes draft → submitted → published, or is returned with the
editor's note and comes back; a blog may let its contributors publish directly."""

import httpx
import pytest
from fastapi import FastAPI

from tests.support.errors import UNCHECKED, assert_error
from tests.support.factories import ADMIN, publish_entry, read_log
from tests.support.people import Person, add_person

BLOG = "/api/v1/blogs/vote-night"
ENTRIES = f"{BLOG}/entries"


@pytest.fixture
async def cora(app: FastAPI, blog: dict) -> Person:
    return await add_person(app, "Cora Lind", role="contributor")


@pytest.fixture
async def eddie(app: FastAPI, blog: dict) -> Person:
    return await add_person(app, "Eddie Grant", role="editor")


async def patch(client: httpx.AsyncClient, entry_id: int, who: Person, **fields) -> dict:
    response = await client.patch(f"{ENTRIES}/{entry_id}", json=fields, headers=who.headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_submission_is_returned_with_a_note_then_resubmitted_and_approved(
    client: httpx.AsyncClient, cora: Person, eddie: Person
) -> None:
    draft = await publish_entry(
        client, headers=cora.headers, headline="Turnout at 71%", status="draft"
    )
    submitted = await patch(client, draft["id"], cora, status="submitted")
    assert submitted["status"] == "submitted"
    queue = (await client.get(f"{ENTRIES}?status=submitted", headers=eddie.headers)).json()
    assert [e["id"] for e in queue["items"]] == [draft["id"]]

    returned = await patch(
        client, draft["id"], eddie, status="returned", review_note="Source for the 71%?"
    )
    assert returned["status"] == "returned"
    assert returned["review_note"] == "Source for the 71%?"
    # The writer sees the note on the entry, in its list of returned entries.
    mine = (await client.get(f"{ENTRIES}?status=returned", headers=cora.headers)).json()
    assert [(e["id"], e["review_note"]) for e in mine["items"]] == [
        (draft["id"], "Source for the 71%?")
    ]

    again = await patch(
        client,
        draft["id"],
        cora,
        headline="Turnout at 71%, election office says",
        status="submitted",
    )
    assert again["status"] == "submitted"
    assert "review_note" not in again  # answered: the note is gone
    assert await read_log(client, "vote-night") == []  # nothing public yet

    published = await patch(client, draft["id"], eddie, status="published")
    assert published["status"] == "published"
    # Dated when it went out, not when it was written: it leads the blog.
    assert published["published_at"] > draft["published_at"]
    assert published["published_at"] == published["updated_at"]
    [event] = await read_log(client, "vote-night")
    assert event["type"] == "entry.created"
    assert event["entry"]["headline"] == "Turnout at 71%, election office says"
    assert "review_note" not in event["entry"]


async def test_a_returned_entry_can_be_taken_back_to_draft_keeping_the_note(
    client: httpx.AsyncClient, cora: Person, eddie: Person
) -> None:
    entry = await publish_entry(
        client, headers=cora.headers, headline="Exit poll", status="submitted"
    )
    await patch(client, entry["id"], eddie, status="returned", review_note="Not yet")
    draft = await patch(client, entry["id"], cora, status="draft")
    assert (draft["status"], draft["review_note"]) == ("draft", "Not yet")


async def test_a_contributor_withdraws_its_submission_back_to_draft(
    client: httpx.AsyncClient, cora: Person
) -> None:
    entry = await publish_entry(
        client, headers=cora.headers, headline="Exit poll", status="submitted"
    )
    assert (await patch(client, entry["id"], cora, status="draft"))["status"] == "draft"


@pytest.mark.parametrize(
    "body",
    [
        {"status": "returned"},
        {"review_note": "Check the figure"},
        {"status": "draft", "review_note": "Check the figure"},
        {"status": "returned", "review_note": "   "},
    ],
    ids=["return-without-note", "note-without-return", "note-with-draft", "blank-note"],
)
async def test_a_return_needs_a_note_and_a_note_needs_a_return(
    client: httpx.AsyncClient, cora: Person, eddie: Person, body: dict
) -> None:
    entry = await publish_entry(
        client, headers=cora.headers, headline="Exit poll", status="submitted"
    )
    response = await client.patch(f"{ENTRIES}/{entry['id']}", json=body, headers=eddie.headers)
    assert_error(response, 422, "invalid_input", UNCHECKED)
    stored = (await client.get(f"{ENTRIES}/{entry['id']}", headers=eddie.headers)).json()
    assert stored["status"] == "submitted" and "review_note" not in stored


@pytest.mark.parametrize("status", ["submitted", "returned"])
async def test_a_published_entry_goes_back_to_draft_before_it_can_be_reviewed(
    client: httpx.AsyncClient, blog: dict, eddie: Person, status: str
) -> None:
    entry = await publish_entry(client, headline="Polls close")
    body = {"status": status} | ({"review_note": "Why?"} if status == "returned" else {})
    response = await client.patch(f"{ENTRIES}/{entry['id']}", json=body, headers=eddie.headers)
    assert_error(response, 409, "invalid_transition")
    assert (await client.get(f"{ENTRIES}/{entry['id']}")).json()["status"] == "published"


async def test_returning_a_draft_that_was_never_submitted_is_refused(
    client: httpx.AsyncClient, cora: Person, eddie: Person
) -> None:
    entry = await publish_entry(client, headers=cora.headers, headline="Notes", status="draft")
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}",
        json={"status": "returned", "review_note": "?"},
        headers=eddie.headers,
    )
    assert_error(response, 409, "invalid_transition")


async def test_the_queue_shows_editors_every_submission_and_contributors_their_own(
    app: FastAPI, client: httpx.AsyncClient, cora: Person, eddie: Person
) -> None:
    dev = await add_person(app, "Dev Rao", role="contributor")
    coras = await publish_entry(client, headers=cora.headers, headline="A", status="submitted")
    devs = await publish_entry(client, headers=dev.headers, headline="B", status="submitted")
    await publish_entry(client, headers=dev.headers, headline="C", status="draft")

    def ids(response: httpx.Response) -> list[int]:
        assert response.headers["cache-control"] == "private, no-store"
        return [entry["id"] for entry in response.json()["items"]]

    queue = f"{ENTRIES}?status=submitted"
    assert ids(await client.get(queue, headers=eddie.headers)) == [devs["id"], coras["id"]]
    assert ids(await client.get(queue, headers=ADMIN)) == [devs["id"], coras["id"]]
    assert ids(await client.get(queue, headers=cora.headers)) == [coras["id"]]
    assert ids(await client.get(queue, headers=dev.headers)) == [devs["id"]]
    assert ids(await client.get(f"{ENTRIES}?status=draft", headers=cora.headers)) == []


async def test_contributors_publish_directly_where_the_blog_lets_them(
    app: FastAPI, client: httpx.AsyncClient, cora: Person
) -> None:
    owner = await add_person(app, "Olu Bello", role="owner")
    refused = await client.post(ENTRIES, json={"headline": "Live!"}, headers=cora.headers)
    assert_error(refused, 403, "forbidden")
    assert "submitted" in refused.json()["error"]["message"]

    settings = await client.patch(
        f"{BLOG}/settings", json={"contributors_may_publish": True}, headers=owner.headers
    )
    assert settings.json() == {"blog": "vote-night", "contributors_may_publish": True}
    assert (await client.get(f"{BLOG}/settings", headers=cora.headers)).json() == settings.json()
    # A newsroom setting, not public: not in the blog's answer, and nothing logged.
    assert "contributors_may_publish" not in (await client.get(BLOG)).json()
    assert await read_log(client, "vote-night") == []

    entry = await publish_entry(client, headers=cora.headers, headline="Live!")
    assert entry["status"] == "published"
    submitted = await publish_entry(client, headers=cora.headers, headline="B", status="submitted")
    assert (await patch(client, submitted["id"], cora, status="published"))["status"] == "published"
    # Publishing directly is not editing what is published.
    response = await client.patch(
        f"{ENTRIES}/{entry['id']}", json={"headline": "Live, again"}, headers=cora.headers
    )
    assert_error(response, 403, "forbidden")


async def test_the_settings_are_read_by_members_only(
    app: FastAPI, client: httpx.AsyncClient, blog: dict
) -> None:
    outsider = await add_person(app, "Omar Haddad")
    assert_error(await client.get(f"{BLOG}/settings"), 401, "unauthorised")
    assert_error(await client.get(f"{BLOG}/settings", headers=outsider.headers), 403, "forbidden")


async def test_an_entry_written_without_authors_is_bylined_with_its_writers_name(
    client: httpx.AsyncClient, cora: Person, eddie: Person
) -> None:
    mine = await publish_entry(client, headers=eddie.headers, headline="Polls close")
    assert mine["authors"] == [{"name": "Eddie Grant", "role": None, "url": None}]
    named = await publish_entry(
        client, headers=eddie.headers, headline="Count", authors=[{"name": "Sam Vale"}]
    )
    assert [a["name"] for a in named["authors"]] == ["Sam Vale"]
    legacy = await publish_entry(client, headline="From the wire")
    assert legacy["authors"] == []


async def test_an_entry_taken_back_to_draft_and_republished_keeps_its_first_time(
    client: httpx.AsyncClient, eddie: Person
) -> None:
    entry = await publish_entry(client, headers=eddie.headers, headline="Polls close")
    await patch(client, entry["id"], eddie, status="draft")
    again = await patch(client, entry["id"], eddie, status="published")
    assert again["published_at"] == entry["published_at"]
