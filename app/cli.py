"""`bulletin serve | migrate | token | demo`."""

import argparse
import sys

import uvicorn

from app import migrating
from app.config import Settings


def serve(settings: Settings, args: argparse.Namespace) -> int:
    if settings.migrate_on_start:
        migrating.upgrade(settings.database_url)
    uvicorn.run(
        "app.main:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=settings.log_level,
        # Broadcasts are written once to every reader: never compress per connection.
        ws_per_message_deflate=False,
        proxy_headers=True,
    )
    return 0


def migrate(settings: Settings, _args: argparse.Namespace) -> int:
    migrating.upgrade(settings.database_url)
    print("database is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bulletin", description="Live blogs for newsrooms.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="run the HTTP server")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--workers", type=int, default=1)
    serve_parser.set_defaults(handler=serve)

    migrate_parser = commands.add_parser("migrate", help="apply database migrations")
    migrate_parser.set_defaults(handler=migrate)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.handler(Settings(), args))
