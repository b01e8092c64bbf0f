from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app import caching
from app.api.deps import (
    IdPath,
    IfMatchHeader,
    OptionalPrincipalDep,
    PrincipalDep,
    PublisherDep,
    ServicesDep,
)
from app.caching import Representation
from app.cursors import ENTRY_CURSOR_PATTERN
from app.errors import BulletinError, Unauthorised
from app.models import Blog
from app.people.permissions import private_view, require_role
from app.preconditions import entry_tag, parse_if_match
from app.queries import EntryFilter, find_entry, list_entries, to_entry_public
from app.schemas import (
    ASCII_DIGITS,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_TAG_CHARS,
    OPTIONAL_TOKEN,
    RATE_LIMITED,
    TAG_PATTERN,
    EntriesPublic,
    EntryCreate,
    EntryPublic,
    EntryUpdate,
    error_responses,
    normalise_tag,
)

router = APIRouter(prefix="/api/v1/blogs/{slug}/entries", tags=["entries"], responses=RATE_LIMITED)
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413, 415, 422)
EDIT_ERRORS = error_responses(400, 401, 403, 404, 409, 412, 413, 415, 422)
# A held or scheduled publish is answered 202: accepted, not yet public.
HELD: dict[int | str, dict[str, Any]] = {
    202: {
        "model": EntryPublic,
        "description": "Held or scheduled (`hold_seconds`, `publish_at`): the entry is "
        "`scheduled`, private until its `publish_at`; `POST .../cancel-publish` undoes it.",
    }
}


class InvalidIdempotencyKey(BulletinError):
    code = "invalid_idempotency_key"


@router.post("", status_code=status.HTTP_201_CREATED, responses={**HELD, **WRITE_ERRORS})
async def create_entry(
    slug: str,
    data: EntryCreate,
    response: Response,
    principal: PrincipalDep,
    publisher: PublisherDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Retries with the same key return the first entry, writing nothing.",
            json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN.pattern},
        ),
    ] = None,
) -> EntryPublic:
    """Publish an entry, submit it for review, or save a draft."""
    if idempotency_key is not None and not IDEMPOTENCY_KEY_PATTERN.match(idempotency_key):
        raise InvalidIdempotencyKey("Idempotency-Key must be 1-255 printable ASCII characters.")
    entry, replayed = await publisher.create_entry(slug, data, idempotency_key, principal)
    if entry.status == "scheduled":
        response.status_code = status.HTTP_202_ACCEPTED
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    else:
        response.headers["ETag"] = entry_tag(entry.id, entry.version)
    return entry


@router.get(
    "",
    response_model=EntriesPublic,
    responses={**caching.NOT_MODIFIED_RESPONSE, **error_responses(400, 401, 403, 404, 422)},
    openapi_extra=OPTIONAL_TOKEN,
)
async def read_entries(
    slug: str,
    request: Request,
    principal: OptionalPrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100), ASCII_DIGITS] = 20,
    before: Annotated[
        str | None,
        Query(
            description="`next_cursor` of the previous page",
            json_schema_extra={"pattern": ENTRY_CURSOR_PATTERN},
        ),
    ] = None,
    key_events: Annotated[bool, Query(description="Only key events")] = False,
    tag: Annotated[
        str | None,
        Query(
            max_length=MAX_TAG_CHARS,
            pattern=TAG_PATTERN,
            description="Only entries with this tag (any spelling of it: `Supreme Court`, "
            "`supreme-court`)",
        ),
    ] = None,
    order: Annotated[
        Literal["newest", "oldest"],
        Query(
            description="`oldest`: oldest first; `before` then takes the `next_cursor` of the "
            "previous page all the same (the next page holds later entries)"
        ),
    ] = "newest",
    entry_status: Annotated[
        str,
        Query(
            alias="status",
            pattern="^(published|draft|submitted|returned|scheduled)$",
            description="Private states need a token of the blog's members: editors see "
            "everyone's (`submitted` is the review queue, `scheduled` the held and scheduled "
            "publishes), contributors their own.",
        ),
    ] = "published",
) -> Response:
    """Entries newest first (or oldest first), a page at a time."""
    oldest_first = order == "oldest"
    private = entry_status != "published"
    if private and principal is None:
        raise Unauthorised("Entries that are not published are visible only with a token.")

    async def build(session: AsyncSession, blog: Blog) -> Representation:
        writer_id = None
        if private and principal is not None:  # a private read without a token is refused
            view = private_view(principal, blog)
            if view is None:
                require_role(principal, blog, "contributor", "Reading unpublished entries")
            writer_id = view.writer_id if view else None
        entry_filter = EntryFilter(
            key_events_only=key_events,
            status=entry_status,
            writer_id=writer_id,
            tag=normalise_tag(tag) if tag is not None else None,
            oldest_first=oldest_first,
        )
        page = await list_entries(session, blog, limit=limit, before=before, filter=entry_filter)
        return Representation(page.model_dump_json().encode(), "application/json")

    return await caching.respond(
        request,
        slug,
        build,
        vary="Authorization",
        private_to_caller=private,
    )


@router.get(
    "/{entry_id}",
    response_model=EntryPublic,
    responses={**caching.NOT_MODIFIED_RESPONSE, **error_responses(401, 404, 422)},
    openapi_extra=OPTIONAL_TOKEN,
)
async def read_entry(
    slug: str, entry_id: IdPath, request: Request, principal: OptionalPrincipalDep
) -> Response:
    """Read one entry; unpublished ones only with a token of the blog's members."""

    async def build(session: AsyncSession, blog: Blog) -> Representation:
        view = private_view(principal, blog) if principal is not None else None
        entry = await find_entry(
            session,
            blog,
            entry_id,
            include_drafts=view is not None,
            writer_id=view.writer_id if view else None,
        )
        public = to_entry_public(entry, blog.slug)
        tags.append(entry_tag(entry.id, entry.version))
        return Representation(public.model_dump_json().encode(), "application/json")

    tags: list[str] = []
    # With a token the answer may be a private entry: that one is the caller's alone, and
    # its ETag is the entry's version, to send back as If-Match with an edit.
    answer = await caching.respond(
        request,
        slug,
        build,
        vary="Authorization",
        private_to_caller=principal is not None,
    )
    if principal is not None and tags:
        answer.headers["ETag"] = tags[0]
    return answer


@router.patch("/{entry_id}", responses={**HELD, **EDIT_ERRORS})
async def update_entry(
    slug: str,
    entry_id: IdPath,
    data: EntryUpdate,
    response: Response,
    principal: PrincipalDep,
    publisher: PublisherDep,
    services: ServicesDep,
    if_match: IfMatchHeader = None,
) -> EntryPublic:
    """Edit, pin or unpin an entry, or move it through review; only the fields sent change."""
    entry = await publisher.update_entry(slug, entry_id, data, principal, parse_if_match(if_match))
    if data.holds_or_schedules:
        response.status_code = status.HTTP_202_ACCEPTED
    response.headers["ETag"] = entry_tag(entry.id, entry.version)
    # Saved: the caller is no longer editing it (its flag, if it held one, goes).
    await services.presence.release_after_save(slug, entry.id, principal)
    return entry


@router.post(
    "/{entry_id}/cancel-publish", responses=error_responses(400, 401, 403, 404, 409, 412, 422)
)
async def cancel_publish(
    slug: str,
    entry_id: IdPath,
    response: Response,
    principal: PrincipalDep,
    publisher: PublisherDep,
    if_match: IfMatchHeader = None,
) -> EntryPublic:
    """Undo a held or scheduled publish before it goes out (its writer or an editor): the
    entry goes back to the state it was published from (a new entry: a draft), and nothing
    was ever sent. 409 `already_published` once it is out; 409 `not_scheduled` if no publish
    of it waits."""
    entry = await publisher.cancel_publish(slug, entry_id, principal, parse_if_match(if_match))
    response.headers["ETag"] = entry_tag(entry.id, entry.version)
    return entry


@router.delete(
    "/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 401, 403, 404, 412, 422),
)
async def delete_entry(
    slug: str,
    entry_id: IdPath,
    principal: PrincipalDep,
    publisher: PublisherDep,
    if_match: IfMatchHeader = None,
) -> None:
    """Delete an entry; readers' pages remove it. Deleting twice is not an error."""
    await publisher.delete_entry(slug, entry_id, principal, parse_if_match(if_match))
