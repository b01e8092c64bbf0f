from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import PrincipalDep, ReadSessionDep
from app.api.tokens import to_token_public
from app.models import Blog, Token, TokenBlog, User
from app.people.roles import Principal
from app.people.schemas import MePublic, MyBlogPublic
from app.people.users import to_user_public
from app.schemas import RATE_LIMITED, error_responses

router = APIRouter(prefix="/api/v1/me", tags=["me"], responses=RATE_LIMITED)


async def describe(principal: Principal, session: AsyncSession) -> MePublic:
    """Who a principal is: its user (or legacy token), and its blogs with its role on each.
    Also the body of the sign-in session's answers (app/api/sessions.py)."""
    user = await session.get(User, principal.user_id) if principal.user_id else None
    token = await session.get(Token, principal.token_id) if principal.token_id else None
    narrowed = (
        list(
            await session.scalars(
                select(Blog.slug)
                .join(TokenBlog, TokenBlog.blog_id == Blog.id)
                .where(TokenBlog.token_id == token.id)
                .order_by(Blog.slug)
            )
        )
        if token is not None
        else []
    )
    blogs = await session.execute(
        select(Blog.id, Blog.slug, Blog.title)
        .where(Blog.id.in_(list(principal.blog_roles)))
        .order_by(Blog.slug)
    )
    return MePublic(
        user=to_user_public(user) if user else None,
        token=to_token_public(token, narrowed) if token else None,
        admin=principal.is_admin,
        every_blog_role="owner" if principal.is_admin else principal.every_blog,
        blogs=[
            MyBlogPublic(slug=slug, title=title, role=principal.blog_roles[blog_id])
            for blog_id, slug, title in blogs
        ],
    )


@router.get("", responses=error_responses(401))
async def read_me(principal: PrincipalDep, session: ReadSessionDep) -> MePublic:
    """Who am I: my user (or my legacy token), and my blogs with my role on each."""
    return await describe(principal, session)
