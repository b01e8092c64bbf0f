"""Re-exports for tests/browser/conftest.py; the helpers live in tests/support/servers.py."""

from tests.support.servers import BULLETIN, ServerProcess

__all__ = ["BULLETIN", "ServerProcess"]
