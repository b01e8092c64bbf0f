"""The audit log: who changed what, when, and from which address.

Every change is recorded in the transaction that makes it (so a refused or failed change
leaves no record, and no change goes unrecorded): the actor's user and token, how it came
(`via`), the client's address, the action and what changed. Details name fields and the
states they moved between; they never hold a password, a secret or an entry's text.

Records are read by a blog's owners (`GET /api/v1/blogs/{slug}/audit`) and by admins
(`GET /api/v1/audit`, every record), newest first; never by the public.

Actions:
- entries: `entry.drafted`, `entry.submitted`, `entry.published` (written as published, or
  a draft published), `entry.approved` (a submission published), `entry.returned`,
  `entry.withdrawn` (a submission taken back to draft), `entry.unpublished`,
  `entry.edited`, `entry.pinned`, `entry.unpinned`, `entry.redacted`, `entry.deleted`
- blogs: `blog.created`, `blog.updated`, `blog.ended`, `blog.reopened`, `blog.settings_changed`,
  and an admin's kill switch, `blog.streams_stopped`, `blog.streams_resumed` (app/stopping.py)
- members: `member.added`, `member.changed`, `member.removed`
- webhooks: `webhook.created`, `webhook.updated`, `webhook.deleted`
- tokens: `token.created`, `token.revoked`
- users: `user.created`, `user.updated`, and `user.signed_in`, `user.signed_out` for
  sign-in sessions (`record_sign_in`, `record_sign_out`)
"""

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.cursors import decode_audit_cursor, encode_audit_cursor
from app.db import append_row
from app.models import AuditRecord, Blog, User, utc_now
from app.people.roles import Principal
from app.schemas import AuditRecordPublic, AuditRecordsPublic


def record(
    session: AsyncSession,
    actor: Principal,
    action: str,
    *,
    blog_id: int | None = None,
    entry_id: int | None = None,
    seq: int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Add the record of one change to the session, to commit with the change itself."""
    append_row(
        session,
        AuditRecord,
        {
            "created_at": utc_now(),
            "action": action,
            "actor_user_id": actor.user_id,
            "actor_token_id": actor.token_id,
            "via": actor.via,
            "address": actor.address,
            "blog_id": blog_id,
            "entry_id": entry_id,
            "seq": seq,
            "details": details or {},
        },
    )


def record_sign_in(session: AsyncSession, actor: Principal) -> None:
    """A user signed in (the actor is the new session's principal)."""
    record(session, actor, "user.signed_in", details={"user_id": actor.user_id})


def record_sign_out(session: AsyncSession, actor: Principal, *, user_id: int) -> None:
    """A session of `user_id` ended: signed out by its user, or revoked by `actor`."""
    record(session, actor, "user.signed_out", details={"user_id": user_id})


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`{"fields": [...]}` naming what differs, with `{"from", "to"}` for the fields whose
    values are states or flags (status, roles, booleans), which are safe to keep."""
    fields = sorted(name for name in after if before.get(name) != after[name])
    details: dict[str, Any] = {"fields": fields}
    for name in fields:
        value = after[name]
        if name in ("status", "role") or isinstance(value, bool):
            details[name] = {"from": before.get(name), "to": value}
    return details


async def list_records(
    session: AsyncSession, *, blog_id: int | None, before: str | None, limit: int
) -> AuditRecordsPublic:
    """Newest first, a page at a time: one blog's records, or (blog_id None) all of them."""
    query = (
        select(AuditRecord, Blog.slug)
        .outerjoin(Blog, Blog.id == AuditRecord.blog_id)
        .order_by(AuditRecord.id.desc())
        .limit(limit + 1)
    )
    if blog_id is not None:
        query = query.where(AuditRecord.blog_id == blog_id)
    if before is not None:
        query = query.where(AuditRecord.id < decode_audit_cursor(before))
    rows = (await session.execute(query)).all()
    next_cursor = encode_audit_cursor(rows[limit - 1][0].id) if len(rows) > limit else None
    return AuditRecordsPublic(
        items=[_to_public(stored, slug) for stored, slug in rows[:limit]],
        next_cursor=next_cursor,
    )


# The actions that move a blog's version (its ETag), newest of which names who changed it.
BLOG_VERSION_ACTIONS = ("blog.created", "blog.updated", "blog.ended", "blog.reopened")


async def last_blog_change(session: AsyncSession, blog_id: int) -> tuple[str, datetime] | None:
    """Who made the blog's current version and when, as an editor reads it: the user's
    name, else the token's id."""
    row = (
        await session.execute(
            select(AuditRecord, User.name)
            .outerjoin(User, User.id == AuditRecord.actor_user_id)
            .where(
                AuditRecord.blog_id == blog_id,
                AuditRecord.action.in_(BLOG_VERSION_ACTIONS),
            )
            .order_by(AuditRecord.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    stored, name = row
    if name:
        return name, stored.created_at
    if stored.actor_token_id is not None:
        return f"token {stored.actor_token_id}", stored.created_at
    return ("Bulletin" if stored.via == "system" else stored.via), stored.created_at


def _to_public(stored: AuditRecord, slug: str | None) -> AuditRecordPublic:
    return AuditRecordPublic(
        id=stored.id,
        at=stored.created_at,
        action=stored.action,
        actor_user_id=stored.actor_user_id,
        actor_token_id=stored.actor_token_id,
        via=stored.via,
        address=stored.address,
        blog=slug,
        entry_id=stored.entry_id,
        seq=stored.seq,
        details=stored.details,
    )
