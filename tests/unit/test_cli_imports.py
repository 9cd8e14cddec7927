"""`import farebox.cli` stays clear of the server's stack, so that `farebox --help` and the CLI start quickly.

The CLI uses the API's schemas and plain functions (`farebox.api.*_schemas`), never its routers; only
`farebox serve` imports uvicorn, and the app, when it runs.
"""

from __future__ import annotations

import subprocess
import sys

SERVER_STACK = ("fastapi", "starlette", "aiohttp", "uvicorn")


def test_importing_the_cli_leaves_out_the_server_stack() -> None:
    probe = f"import sys, farebox.cli; print(','.join(m for m in {SERVER_STACK!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
