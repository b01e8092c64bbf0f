"""`bulletin serve | migrate | token | demo`."""

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

from app.config import Settings, is_loopback, local_url
from app.db import Database
from app.errors import BulletinError
from app.serving import uvicorn_options
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
    print(
        f"bulletin: serving {base_url}/ (blogs), {base_url}/newsroom (publish), "
        f"{base_url}/docs (the API)",
        flush=True,
    )
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
