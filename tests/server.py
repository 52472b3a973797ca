"""A real Parley server in a subprocess, as a user would run it."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def redis_namespace(database_url: str) -> str:
    return "parley-test-" + hashlib.sha256(database_url.encode()).hexdigest()[:16]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """Die at once, as a crashed node would: no goodbyes, no clean-up."""
        self.process.kill()
        self.process.wait()


@contextmanager
def running_server(
    *,
    data_dir: Path,
    database_url: str,
    broadcast_url: str,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Server]:
    """Start ``python main.py`` and yield it once /health answers."""
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "BROADCAST_URL": broadcast_url,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warning",
        # Every database its own Redis keys: user ids repeat across the fresh
        # databases, and presence left by an earlier test must not show here.
        "REDIS_NAMESPACE": redis_namespace(database_url),
        **(extra_env or {}),
    }
    if not database_url.startswith("sqlite"):
        subprocess.run(
            [sys.executable, "main.py", "migrate"], cwd=ROOT, env=env, check=True, timeout=120
        )
    log = (data_dir / f"server-{port}.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "main.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {(data_dir / log.name).read_text()[-2000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start within 60 s")
            time.sleep(0.1)
        yield Server(url=base, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
