"""The API's contract for people: users, members of a blog, who am I, a blog's settings."""

from typing import Annotated

from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    Field,
    SecretStr,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
)

from app.people.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, check_password_rule
from app.people.roles import Role
from app.schemas import Name, RequestModel, TokenPublic, UtcDatetime

# An email address, loosely: something@somewhere, without spaces or control characters.
# Compared case-insensitively (casefolded).
LOGIN_PATTERN = r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+$"
Login = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=LOGIN_PATTERN)]


def _password(value: SecretStr) -> SecretStr:
    check_password_rule(value.get_secret_value())
    return value


Password = Annotated[
    SecretStr,
    AfterValidator(_password),
    WithJsonSchema(
        {
            "type": "string",
            "format": "password",
            "writeOnly": True,
            "minLength": MIN_PASSWORD_CHARS,
            "maxLength": MAX_PASSWORD_CHARS,
        }
    ),
]


class UserCreate(RequestModel):
    name: Name = Field(description="Shown as the byline of entries written without authors.")
    login: Login = Field(description="An email address; unique whatever its case.")
    password: Password = Field(
        description=f"{MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters; stored as an "
        "Argon2id hash and never shown."
    )
    admin: StrictBool = Field(False, description="An admin may do everything, on every blog.")


class UserUpdate(RequestModel):
    """Only the fields sent are changed."""

    name: Name | MISSING = MISSING
    disabled: StrictBool | MISSING = Field(
        MISSING, description="A disabled user's tokens stop working (401) until enabled again."
    )
    admin: StrictBool | MISSING = MISSING
    password: Password | MISSING = MISSING


class UserPublic(BaseModel):
    id: int
    name: str
    login: str
    admin: bool
    disabled: bool
    disabled_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class MemberUpdate(RequestModel):
    role: Role


class MemberPublic(BaseModel):
    """A user's role on one blog."""

    blog: str = Field(description="The blog's slug.")
    user_id: int
    name: str
    login: str
    role: Role
    disabled: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime


class BlogSettingsUpdate(RequestModel):
    contributors_may_publish: StrictBool | MISSING = MISSING


class BlogSettingsPublic(BaseModel):
    """A blog's newsroom settings: seen by its members only, never in public answers."""

    blog: str
    contributors_may_publish: bool = Field(
        description="Whether contributors publish directly; otherwise they submit for review."
    )


class MyBlogPublic(BaseModel):
    slug: str
    title: str
    role: Role


class MePublic(BaseModel):
    """Who the caller is: a user (through one of its tokens), or a legacy token of no user."""

    user: UserPublic | None
    token: TokenPublic | None = Field(description="The token this request was sent with.")
    admin: bool = Field(description="A global admin: everything, on every blog.")
    every_blog_role: Role | None = Field(
        description="A role held on every blog (an admin's is owner; a legacy publish token's "
        "editor)."
    )
    blogs: list[MyBlogPublic] = Field(description="The blogs with a role of their own, by slug.")


class SignIn(RequestModel):
    """A login and a password: the newsroom page's sign-in."""

    login: Annotated[str, StringConstraints(min_length=1, max_length=320)] = Field(
        description="The user's login (an email address), in any case."
    )
    password: Annotated[
        SecretStr,
        Field(min_length=1, max_length=MAX_PASSWORD_CHARS),
        WithJsonSchema(
            {
                "type": "string",
                "format": "password",
                "writeOnly": True,
                "minLength": 1,
                "maxLength": MAX_PASSWORD_CHARS,
            }
        ),
    ]


class SessionPublic(MePublic):
    """Who is signed in, as `GET /api/v1/me` says it, with the session's CSRF token and when
    it ends."""

    csrf_token: str = Field(
        description="Send it as `X-CSRF-Token` with every request of this session that changes "
        "something (POST, PUT, PATCH, DELETE)."
    )
    expires_at: UtcDatetime = Field(description="The session ends then whatever happens.")
    idle_expires_at: UtcDatetime = Field(
        description="The session ends then unless a request comes first (each request moves it on)."
    )
