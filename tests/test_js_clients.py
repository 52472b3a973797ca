"""The JavaScript clients frontends use (graphql-ws, Apollo Client, urql), run in Node.

The packages are pinned in tests/js/package-lock.json and installed with
`npm ci` on first use. Without Node.js the test is skipped, except under CI,
where it must run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

JS = Path(__file__).parent / "js"


@pytest.fixture(scope="module")
def node() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Node.js and npm are needed for the client checks")
        pytest.skip("Node.js and npm are not installed")
    lock = (JS / "package-lock.json").read_bytes()
    stamp = JS / "node_modules" / ".installed-from"
    digest = hashlib.sha256(lock).hexdigest()
    if not stamp.exists() or stamp.read_text() != digest:
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=JS,
            check=True,
            timeout=300,
        )
        stamp.write_text(digest)
    return node


def test_graphql_ws_apollo_and_urql_against_the_server(node: str, server_url: str) -> None:
    # when the real clients subscribe, send and receive (see tests/js/clients.mjs)
    result = subprocess.run(
        [node, "clients.mjs", server_url], cwd=JS, capture_output=True, text=True, timeout=120
    )
    # then
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {
        "graphqlWs": [[1, "ws 0"], [2, "ws 1"], [3, "ws 2"]],
        "apollo": [["MessageAdded", 1, "apollo 0"], ["MessageAdded", 2, "apollo 1"]],
        "urql": [[1, "urql 0"], [2, "urql 1"]],
        "badTokenClose": 4403,
    }
