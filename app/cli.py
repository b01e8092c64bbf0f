"""`bulletin serve | migrate | token | user | demo`."""

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable

from app.config import Settings, is_loopback, local_url
from app.db import Database
from app.errors import BulletinError, InvalidInput
from app.people.memberships import MembershipStore
from app.people.passwords import check_password_rule
from app.people.roles import COMMAND_LINE, ROLES
from app.people.users import UserStore
from app.serving import removed_setting_warnings, uvicorn_options
from app.tokens import TokenStore


def public_base_url(settings: Settings, host: str, port: int) -> str:
    """The configured public address, else the one a browser here uses to reach host:port."""
    return settings.public_base_url if settings.public_base_url_is_set else local_url(host, port)


def public_base_url_warning(settings: Settings, host: str, base_url: str) -> str | None:
    """Served beyond this machine with no public address set, links would name this one."""
    if settings.public_base_url_is_set or is_loopback(host):
        return None
    return (
        f"BULLETIN_PUBLIC_BASE_URL is not set, so pages and feeds link to {base_url}; "
        "set it to the address readers use (https://live.example.org)"
    )


def serve(settings: Settings, args: argparse.Namespace) -> int:
    from app import migrating  # alembic is only needed to migrate

    if settings.migrate_on_start:
        # Once, here, before any worker starts: workers never race to migrate.
        print(f"bulletin: {migrating.migrate(settings.database_url)}")
    else:
        asyncio.run(migrating.require_migrated(settings.database_url))
    base_url = public_base_url(settings, args.host, args.port)
    if not settings.public_base_url_is_set:
        # The workers read their settings from the environment: they link to this address.
        os.environ["BULLETIN_PUBLIC_BASE_URL"] = base_url
    if warning := public_base_url_warning(settings, args.host, base_url):
        print(f"bulletin: {warning}", file=sys.stderr)
    for warning in removed_setting_warnings(os.environ):
        print(f"bulletin: {warning}", file=sys.stderr)
    print(
        f"bulletin: serving {base_url}/ (blogs), {base_url}/newsroom (publish), "
        f"{base_url}/docs (the API)",
        flush=True,
    )
    import uvicorn  # only serving needs the server

    from app.logs import log_config

    uvicorn.run(
        "app.main:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_config=log_config(settings),
        **uvicorn_options(settings),
    )
    return 0


def migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from app import migrating  # alembic is only needed to migrate

    print(migrating.migrate(settings.database_url))
    return 0


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    """Run `work` on the database, refusing in one line one that is missing or not migrated
    (and never creating an empty one)."""
    from app import migrating

    async def run() -> int:
        await migrating.require_migrated(settings.database_url)
        database = Database(settings.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def token_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        user = await UserStore(database).find(args.user) if args.user else None
        token, secret = await TokenStore(database).create(
            args.name,
            args.scope,
            user_id=user.id if user else None,
            blogs=args.blog or (),
            max_role=args.max_role,
            actor=COMMAND_LINE,
        )
        who = f"acting as {user.login}" if user else f"with scope {token.scope}"
        narrowed = "".join(
            [
                f", on {', '.join(args.blog)} only" if args.blog else "",
                f", at most {args.max_role}" if args.max_role else "",
            ]
        )
        print(f"created token {token.id} '{token.name}' {who}{narrowed}.")
        print("Its secret is shown only now; store it safely:")
        print(secret)
        return 0

    return _with_database(settings, work)


def token_list(settings: Settings, _args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        tokens = await TokenStore(database).list()
        print(f"{'id':>4}  {'scope':<8} {'prefix':<12} {'state':<8} name")
        for token in tokens:
            state = "revoked" if token.revoked_at else "active"
            print(f"{token.id:>4}  {token.scope:<8} {token.prefix:<12} {state:<8} {token.name}")
        return 0

    return _with_database(settings, work)


def token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        token = await TokenStore(database).revoke(args.id, COMMAND_LINE)
        print(f"revoked token {token.id} '{token.name}'")
        return 0

    return _with_database(settings, work)


def read_password() -> str:
    """A new password: typed twice at a terminal (never echoed), else the first line of
    standard input. Never an argument: arguments are visible to every user of the machine."""
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != password:
            raise InvalidInput("The passwords differ; nothing was stored.")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        return check_password_rule(password)
    except ValueError as error:
        raise InvalidInput(f"The password {error}; nothing was stored.") from error


def user_create(settings: Settings, args: argparse.Namespace) -> int:
    from pydantic import SecretStr, ValidationError

    from app.people.schemas import UserCreate

    try:
        data = UserCreate(
            name=args.name,
            login=args.login,
            password=SecretStr(read_password()),
            admin=args.admin,
        )
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise InvalidInput(f"{problems}; nothing was stored.") from error

    async def work(database: Database) -> int:
        user = await UserStore(database).create(data, COMMAND_LINE)
        kind = "admin" if user.admin else "user"
        print(f"created {kind} {user.id} {user.login} ({user.name})")
        return 0

    return _with_database(settings, work)


def user_list(settings: Settings, _args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        from sqlalchemy import select

        from app.models import Blog, Membership

        users = await UserStore(database).list()
        async with database.read_session() as session:
            rows = await session.execute(
                select(Membership.user_id, Blog.slug, Membership.role)
                .join(Blog, Blog.id == Membership.blog_id)
                .order_by(Blog.slug)
            )
            roles: dict[int, list[str]] = {}
            for user_id, slug, role in rows:
                roles.setdefault(user_id, []).append(f"{slug}:{role}")
        print(f"{'id':>4}  {'state':<8} {'admin':<5}  {'login':<32} {'name':<24} roles")
        for user in users:
            state = "disabled" if user.disabled_at else "active"
            admin = "yes" if user.admin else "no"
            held = ",".join(roles.get(user.id, [])) or "-"
            print(f"{user.id:>4}  {state:<8} {admin:<5}  {user.login:<32} {user.name:<24} {held}")
        return 0

    return _with_database(settings, work)


def user_disable(settings: Settings, args: argparse.Namespace) -> int:
    from app.people.schemas import UserUpdate

    disabled = args.user_command == "disable"

    async def work(database: Database) -> int:
        users = UserStore(database)
        user = await users.update(
            (await users.find(args.login)).id, UserUpdate(disabled=disabled), COMMAND_LINE
        )
        state = "disabled: its tokens stop working" if disabled else "enabled"
        print(f"user {user.id} {user.login} is {state}")
        return 0

    return _with_database(settings, work)


def user_grant(settings: Settings, args: argparse.Namespace) -> int:
    from app.people.schemas import UserUpdate

    granting = args.user_command == "grant"
    if args.admin == bool(args.blog):
        raise InvalidInput("Name either --blog (with --role to grant) or --admin.")
    if granting and args.blog and not args.role:
        raise InvalidInput("Granting a role on a blog needs --role.")

    async def work(database: Database) -> int:
        users = UserStore(database)
        user = await users.find(args.login)
        if args.admin:
            await users.update(user.id, UserUpdate(admin=granting), COMMAND_LINE)
            print(f"user {user.login} {'is now' if granting else 'is no longer'} an admin")
        elif granting:
            await MembershipStore(database).put(args.blog, user.id, args.role, COMMAND_LINE)
            print(f"user {user.login} is {args.role} of {args.blog}")
        else:
            await MembershipStore(database).remove(args.blog, user.id, COMMAND_LINE)
            print(f"user {user.login} has no role on {args.blog} any more")
        return 0

    return _with_database(settings, work)


def demo(settings: Settings, args: argparse.Namespace) -> int:
    from app.demo import load_demo  # the sample content is only needed here

    async def work(database: Database) -> int:
        base_url = public_base_url(settings, args.host, args.port)
        slug = await load_demo(database, only_if_empty=args.if_empty, base_url=base_url)
        if slug is None:
            print("blogs exist already; demo not loaded")
        else:
            print(f"demo blog ready: {base_url}/blogs/{slug}")
        return 0

    return _with_database(settings, work)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bulletin", description="Live blogs for newsrooms.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the HTTP server")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--workers", type=int, default=1)
    serve_parser.set_defaults(handler=serve)

    commands.add_parser("migrate", help="apply database migrations").set_defaults(handler=migrate)

    token_parser = commands.add_parser("token", help="create, list and revoke API tokens")
    token_commands = token_parser.add_subparsers(dest="token_command", required=True)
    create_parser = token_commands.add_parser(
        "create",
        help="create a token; prints its secret",
        description="A token of a user (--user) acts as that user; a legacy token (--scope) "
        "is an admin (admin) or an editor of every blog (publish).",
    )
    create_parser.add_argument("--name", required=True)
    kind = create_parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--scope", choices=["publish", "admin"])
    kind.add_argument("--user", metavar="LOGIN", help="the user the token acts as")
    create_parser.add_argument(
        "--blog", action="append", metavar="SLUG", help="act on this blog only (repeatable)"
    )
    create_parser.add_argument("--max-role", choices=ROLES, help="never act above this role")
    create_parser.set_defaults(handler=token_create)
    token_commands.add_parser("list", help="list tokens").set_defaults(handler=token_list)
    revoke_parser = token_commands.add_parser("revoke", help="revoke a token by id")
    revoke_parser.add_argument("id", type=int)
    revoke_parser.set_defaults(handler=token_revoke)

    user_parser = commands.add_parser(
        "user", help="create, list, disable and enable users; grant and revoke roles"
    )
    user_commands = user_parser.add_subparsers(dest="user_command", required=True)
    user_create_parser = user_commands.add_parser(
        "create",
        help="create a user",
        description="The password is typed twice at the terminal, or read from the first "
        "line of standard input (never an argument).",
    )
    user_create_parser.add_argument("--name", required=True, help="the default byline")
    user_create_parser.add_argument("--login", required=True, help="an email address")
    user_create_parser.add_argument("--admin", action="store_true", help="may do everything")
    user_create_parser.set_defaults(handler=user_create)
    user_commands.add_parser("list", help="list users and their roles").set_defaults(
        handler=user_list
    )
    for state in ("disable", "enable"):
        state_parser = user_commands.add_parser(state, help=f"{state} a user and its tokens")
        state_parser.add_argument("login")
        state_parser.set_defaults(handler=user_disable)
    for change, what in (("grant", "give"), ("revoke", "take away")):
        grant_parser = user_commands.add_parser(
            change, help=f"{what} a role on a blog (--blog, --role) or admin (--admin)"
        )
        grant_parser.add_argument("login")
        grant_parser.add_argument("--blog", metavar="SLUG")
        if change == "grant":
            grant_parser.add_argument("--role", choices=ROLES)
        grant_parser.add_argument("--admin", action="store_true")
        grant_parser.set_defaults(handler=user_grant)

    demo_parser = commands.add_parser("demo", help="load a fictional demo blog")
    demo_parser.add_argument(
        "--if-empty", action="store_true", help="only when the database has no blog yet"
    )
    # Where `bulletin serve` will listen, when BULLETIN_PUBLIC_BASE_URL does not say: the
    # demo's live updates link to it and the command prints the page's address there.
    demo_parser.add_argument("--host", default="127.0.0.1")
    demo_parser.add_argument("--port", type=int, default=8000)
    demo_parser.set_defaults(handler=demo)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.handler(Settings(), args))
    except BulletinError as error:
        print(f"bulletin: {error.message}", file=sys.stderr)
        sys.exit(1)
