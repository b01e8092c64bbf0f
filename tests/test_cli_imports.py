"""The CLI starts fast: commands that only touch the database load no web stack."""

import subprocess
import sys

HEAVY = ("fastapi", "starlette", "alembic", "uvicorn", "redis", "limits")


def test_importing_the_cli_loads_no_web_framework_server_or_migration_tool() -> None:
    probe = f"import sys, app.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
