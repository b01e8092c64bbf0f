"""An entry's revisions, for the blog's editors: every version, two compared, one restored."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app import revisions
from app.api.deps import BlogDep, DatabaseDep, IdPath, IfMatchHeader, PublisherDep, role_on_blog
from app.errors import NotFound
from app.models import Entry
from app.people.roles import Principal
from app.preconditions import entry_tag, parse_if_match
from app.queries import find_in_blog
from app.schemas import (
    ASCII_DIGITS,
    RATE_LIMITED,
    EntryPublic,
    RevisionPublic,
    RevisionsDiff,
    RevisionsPublic,
    error_responses,
)

router = APIRouter(
    prefix="/api/v1/blogs/{slug}/entries/{entry_id}/revisions",
    tags=["revisions"],
    responses=RATE_LIMITED,
)
EditorDep = Annotated[Principal, Depends(role_on_blog("editor", "Reading revisions"))]
VersionPath = Annotated[int, Path(ge=0), ASCII_DIGITS]
READ_ERRORS = error_responses(401, 403, 404, 422)


@router.get("", responses=READ_ERRORS)
async def read_revisions(
    entry_id: IdPath, blog: BlogDep, _editor: EditorDep, database: DatabaseDep
) -> RevisionsPublic:
    """Every version of an entry, newest (the entry now) first; kept after it is deleted."""
    async with database.read_session() as session:
        entry = await find_in_blog(session, Entry, blog, entry_id, what="entry")
        return RevisionsPublic(
            items=[revisions.to_public(kept) for kept in await revisions.all_of(session, entry.id)]
        )


@router.get("/{version}", responses=READ_ERRORS)
async def read_revision(
    entry_id: IdPath, version: VersionPath, blog: BlogDep, _editor: EditorDep, database: DatabaseDep
) -> RevisionPublic:
    """One version of an entry."""
    async with database.read_session() as session:
        entry = await find_in_blog(session, Entry, blog, entry_id, what="entry")
        return revisions.to_public(await revisions.one(session, entry.id, version))


@router.get("/{version}/diff", responses=READ_ERRORS)
async def diff_revisions(
    entry_id: IdPath,
    version: VersionPath,
    blog: BlogDep,
    _editor: EditorDep,
    database: DatabaseDep,
    against: Annotated[
        int | None,
        Query(description="The version to compare with; the one before by default."),
        ASCII_DIGITS,
    ] = None,
) -> RevisionsDiff:
    """What changed between two versions of an entry, field by field and line by line."""
    async with database.read_session() as session:
        entry = await find_in_blog(session, Entry, blog, entry_id, what="entry")
        other = version - 1 if against is None else against
        if other < 1:
            raise NotFound(f"Version {version} is the first: there is none before it.")
        first, second = sorted((version, other))
        older = await revisions.one(session, entry.id, first)
        newer = await revisions.one(session, entry.id, second)
        return revisions.diff(older, newer)


@router.post(
    "/{version}/restore",
    responses=error_responses(400, 401, 403, 404, 409, 412, 422),
)
async def restore_revision(
    slug: str,
    entry_id: IdPath,
    version: VersionPath,
    response: Response,
    editor: EditorDep,
    publisher: PublisherDep,
    if_match: IfMatchHeader = None,
) -> EntryPublic:
    """Bring an earlier version's content back, as a new version (an edit like any other)."""
    entry = await publisher.restore_revision(
        slug, entry_id, version, editor, parse_if_match(if_match)
    )
    response.headers["ETag"] = entry_tag(entry.id, entry.version)
    return entry
