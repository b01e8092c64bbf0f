"""`bulletin serve | migrate | token | demo`."""

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable

from app.config import Settings
from app.db import Database
from app.errors import BulletinError
from app.serving import uvicorn_options
from app.tokens import TokenStore


def serve(settings: Settings, args: argparse.Namespace) -> int:
    from app import migrating  # alembic is only needed to migrate

    if settings.migrate_on_start:
        # Once, here, before any worker starts: workers never race to migrate.
        migrating.upgrade(settings.database_url)
    import uvicorn  # only serving needs the server

    uvicorn.run(
        "app.main:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        **uvicorn_options(settings),
    )
    return 0


def migrate(settings: Settings, _args: argparse.Namespace) -> int:
    from app import migrating  # alembic is only needed to migrate

    migrating.upgrade(settings.database_url)
    print("database is up to date")
    return 0


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[int]]) -> int:
    async def run() -> int:
        database = Database(settings.database_url)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def token_create(settings: Settings, args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        token, secret = await TokenStore(database).create(args.name, args.scope)
        print(f"created token {token.id} '{token.name}' with scope {token.scope}.")
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
        token = await TokenStore(database).revoke(args.id)
        print(f"revoked token {token.id} '{token.name}'")
        return 0

    return _with_database(settings, work)


def demo(settings: Settings, args: argparse.Namespace) -> int:
    from app.demo import load_demo  # the sample content is only needed here

    async def work(database: Database) -> int:
        slug = await load_demo(
            database, only_if_empty=args.if_empty, base_url=settings.public_base_url
        )
        if slug is None:
            print("blogs exist already; demo not loaded")
        else:
            print(f"demo blog ready: {settings.public_base_url}/api/v1/blogs/{slug}")
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
    create_parser = token_commands.add_parser("create", help="create a token; prints its secret")
    create_parser.add_argument("--name", required=True)
    create_parser.add_argument("--scope", choices=["publish", "admin"], required=True)
    create_parser.set_defaults(handler=token_create)
    token_commands.add_parser("list", help="list tokens").set_defaults(handler=token_list)
    revoke_parser = token_commands.add_parser("revoke", help="revoke a token by id")
    revoke_parser.add_argument("id", type=int)
    revoke_parser.set_defaults(handler=token_revoke)

    demo_parser = commands.add_parser("demo", help="load a fictional demo blog")
    demo_parser.add_argument(
        "--if-empty", action="store_true", help="only when the database has no blog yet"
    )
    demo_parser.set_defaults(handler=demo)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        sys.exit(args.handler(Settings(), args))
    except BulletinError as error:
        print(f"bulletin: {error.message}", file=sys.stderr)
        sys.exit(1)
