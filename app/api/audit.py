from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app import audit
from app.api.deps import AdminDep, BlogDep, ReadSessionDep, role_on_blog
from app.cursors import AUDIT_CURSOR_PATTERN
from app.people.roles import Principal
from app.schemas import ASCII_DIGITS, RATE_LIMITED, AuditRecordsPublic, error_responses

router = APIRouter(prefix="/api/v1", tags=["audit"], responses=RATE_LIMITED)
OwnerDep = Annotated[Principal, Depends(role_on_blog("owner", "Reading a blog's audit log"))]
Limit = Annotated[int, Query(ge=1, le=500), ASCII_DIGITS]
Before = Annotated[
    str | None,
    Query(
        description="`next_cursor` of the previous page",
        json_schema_extra={"pattern": AUDIT_CURSOR_PATTERN},
    ),
]


@router.get("/blogs/{slug}/audit", responses=error_responses(400, 401, 403, 404, 422))
async def read_blog_audit(
    blog: BlogDep,
    _owner: OwnerDep,
    session: ReadSessionDep,
    limit: Limit = 50,
    before: Before = None,
) -> AuditRecordsPublic:
    """Who changed what on this blog, newest first (owner)."""
    return await audit.list_records(session, blog_id=blog.id, before=before, limit=limit)


@router.get("/audit", responses=error_responses(400, 401, 403, 422))
async def read_audit(
    _admin: AdminDep, session: ReadSessionDep, limit: Limit = 50, before: Before = None
) -> AuditRecordsPublic:
    """Every change on the installation, newest first (admin): blogs, users, tokens."""
    return await audit.list_records(session, blog_id=None, before=before, limit=limit)
