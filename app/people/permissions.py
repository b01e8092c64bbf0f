"""The one place that answers "may this principal do this to this blog".

| role        | may                                                                        |
| ----------- | -------------------------------------------------------------------------- |
| contributor | write drafts, submit them, edit and withdraw (or delete) its own unpublished |
|             | entries; publish directly only where the blog lets contributors publish   |
| editor      | all that, and publish, edit and delete any entry, pin and unpin, approve   |
|             | or return submissions, end and reopen coverage                             |
| owner       | all that, and the blog's members, webhooks and settings                    |
| admin       | everything, on every blog; creates blogs, users and tokens for anyone      |

Every check raises `Forbidden` (403) naming the role that is missing, before anything is
written: the write path runs them inside its transaction, which then rolls back.
"""

from collections.abc import Collection
from dataclasses import dataclass

from app.errors import Forbidden
from app.models import Blog, Entry
from app.people.roles import Principal, Role, at_least

# Entries in these states are seen only by the blog's members (contributors: their own);
# a scheduled one (a held or scheduled publish) is private until it goes out.
PRIVATE_STATES = ("draft", "submitted", "returned", "scheduled")
# Changing these is ending or reopening coverage (an editor's); any other field of a blog
# is a setting (an owner's), except the editorial policy that editors keep (EDITORS_FIELDS).
COVERAGE_FIELDS = frozenset({"status", "coverage_end"})
# An editor may require alt text on the blog's images: a rule of the desk, not of the blog.
EDITORS_FIELDS = COVERAGE_FIELDS | {"require_alt_text"}


def require_admin(principal: Principal, what: str = "This") -> None:
    if not principal.is_admin:
        raise Forbidden(f"{what} needs an admin.")


def require_role(principal: Principal, blog: Blog, role: Role, what: str = "This") -> None:
    if not at_least(principal.role_on(blog.id), role):
        raise Forbidden(f"{what} needs the {role} role on blog '{blog.slug}'.")


@dataclass(frozen=True, slots=True)
class PrivateView:
    """What private entries of a blog a principal may read: those of `writer_id` only (a
    contributor's own), or all of them (None)."""

    writer_id: int | None


def private_view(principal: Principal, blog: Blog) -> PrivateView | None:
    """None when the principal may not read the blog's private entries at all."""
    role = principal.role_on(blog.id)
    if at_least(role, "editor"):
        return PrivateView(writer_id=None)
    if at_least(role, "contributor") and principal.user_id is not None:
        return PrivateView(writer_id=principal.user_id)
    return None


def _may_publish(principal: Principal, blog: Blog) -> bool:
    role = principal.role_on(blog.id)
    return at_least(role, "editor") or (
        blog.contributors_may_publish and at_least(role, "contributor")
    )


def _refuse_publishing(blog: Blog) -> Forbidden:
    return Forbidden(
        f"Publishing needs the editor role on blog '{blog.slug}'; a contributor submits an "
        'entry for review with "status": "submitted".'
    )


def check_new_entry(principal: Principal, blog: Blog, status: str, pinned: bool) -> None:
    """Writing an entry in `status` (draft, submitted or published)."""
    if status == "published" and not _may_publish(principal, blog):
        raise _refuse_publishing(blog)
    if pinned:
        require_role(principal, blog, "editor", "Pinning")
    require_role(principal, blog, "contributor", "Writing entries")


def _own_unpublished(principal: Principal, entry: Entry) -> bool:
    return (
        principal.user_id is not None
        and entry.created_by == principal.user_id
        and entry.status != "published"
    )


def check_entry_change(
    principal: Principal, blog: Blog, entry: Entry, new_status: str, fields: Collection[str]
) -> None:
    """Changing `fields` of an entry and moving it from its status to `new_status`."""
    require_role(principal, blog, "contributor", "Changing entries")
    if at_least(principal.role_on(blog.id), "editor"):
        return
    if not _own_unpublished(principal, entry):
        what = (
            "Changing a published entry"
            if entry.status == "published"
            else ("Changing another writer's entry")
        )
        raise Forbidden(f"{what} needs the editor role on blog '{blog.slug}'.")
    if new_status == "returned" and entry.status != "returned":
        raise Forbidden(f"Returning an entry needs the editor role on blog '{blog.slug}'.")
    if "review_note" in fields:
        raise Forbidden(f"Writing a review note needs the editor role on blog '{blog.slug}'.")
    if new_status in ("published", "scheduled") and not _may_publish(principal, blog):
        raise _refuse_publishing(blog)
    if entry.status == "scheduled" and new_status != "draft" and not _may_publish(principal, blog):
        # What is changed in a scheduled entry goes out unreviewed when it falls due.
        raise _refuse_publishing(blog)
    if "pinned" in fields:
        raise Forbidden(f"Pinning needs the editor role on blog '{blog.slug}'.")


def check_cancel_publish(principal: Principal, blog: Blog, entry: Entry) -> None:
    """Undoing a held or scheduled publish: the entry's writer's, or an editor's."""
    require_role(principal, blog, "contributor", "Cancelling a publish")
    if at_least(principal.role_on(blog.id), "editor"):
        return
    if principal.user_id is None or entry.created_by != principal.user_id:
        raise Forbidden(
            f"Cancelling the publish of another writer's entry needs the editor role on blog "
            f"'{blog.slug}'."
        )


def check_entry_delete(principal: Principal, blog: Blog, entry: Entry) -> None:
    require_role(principal, blog, "contributor", "Deleting entries")
    if at_least(principal.role_on(blog.id), "editor") or _own_unpublished(principal, entry):
        return
    what = (
        "Deleting a published entry"
        if entry.status == "published"
        else ("Deleting another writer's entry")
    )
    raise Forbidden(f"{what} needs the editor role on blog '{blog.slug}'.")


def check_blog_change(principal: Principal, blog: Blog, fields: Collection[str]) -> None:
    """Ending or reopening coverage and requiring alt text are an editor's; any other change
    of a blog an owner's."""
    settings = sorted(set(fields) - EDITORS_FIELDS)
    if settings:
        require_role(principal, blog, "owner", f"Changing a blog's {', '.join(settings)}")
    elif set(fields) & COVERAGE_FIELDS:
        require_role(principal, blog, "editor", "Ending or reopening coverage")
    else:
        require_role(principal, blog, "editor", "Requiring alt text on a blog's images")
