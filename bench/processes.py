"""The processes of a benchmark run: servers on core 0, the Node load generator on core 1.

Everything here is plumbing: starting a server and waiting for its health
route, pinning, the file-descriptor limit, installing and running
bench/loadgen.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
LOADGEN = ROOT / "bench" / "loadgen"
SERVER_CORE = "0"
LOADGEN_CORE = "1"


class BenchFailure(Exception):
    """A run that cannot be trusted: wrong deliveries, a failed request, a server that died.

    ``figures`` holds what a run measured all the same (the soak's memory), if anything.
    """

    def __init__(self, message: str, figures: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.figures = figures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# The cores this run may use, read before it pins itself to one of them.
CORES: frozenset[int] = frozenset(
    os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else ()
)


def cores() -> frozenset[int]:
    return CORES


def can_pin() -> bool:
    """Pinning needs two cores and taskset."""
    return len(cores()) > 1 and shutil.which("taskset") is not None


def pinned(command: list[str], cpus: str | None) -> list[str]:
    """The command on the given cores (``taskset -c``); as it is when pinning is impossible."""
    if cpus is None or not can_pin():
        return command
    return ["taskset", "-c", cpus, *command]


def all_cores() -> str:
    return ",".join(str(core) for core in sorted(cores()))


def raise_fd_limit(needed: int) -> None:
    """Raise this process's soft limit on open files (children inherit it) to cover needed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 1024
    if hard != resource.RLIM_INFINITY and hard < want:
        raise BenchFailure(
            f"{needed} sockets need about {want} open files, and the hard limit is {hard}: "
            "raise it (ulimit -Hn) or open fewer sockets (--idle-sockets)."
        )
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@dataclass
class Server:
    name: str
    url: str
    pid: int


@asynccontextmanager
async def serving(
    name: str, command: list[str], env: dict[str, str], port: int, *, cpus: str | None
) -> AsyncIterator[Server]:
    """Run the command until the block ends; enter once GET /health answers 200."""
    url = f"http://127.0.0.1:{port}"
    process = await asyncio.create_subprocess_exec(
        *pinned(command, cpus), cwd=ROOT, env=env, stdin=subprocess.DEVNULL
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                if process.returncode is not None:
                    raise BenchFailure(f"{name} exited with {process.returncode} at start-up")
                try:
                    if (await http.get(url + "/health", timeout=1)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            else:
                raise BenchFailure(f"{name} did not answer /health within 30 s")
        yield Server(name=name, url=url, pid=process.pid)
        if process.returncode is not None:
            raise BenchFailure(f"{name} exited with {process.returncode} during the run")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def run_command(*command: str) -> None:
    process = await asyncio.create_subprocess_exec(*command, stdin=subprocess.DEVNULL)
    if await process.wait() != 0:
        raise BenchFailure(f"{' '.join(command)} failed")


async def reachable(*command: str) -> bool:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return await process.wait() == 0


# ----------------------------------------------------------------- load generator


def ensure_loadgen() -> str:
    """The node binary, with bench/loadgen's packages installed as its lock pins them.

    ``npm ci`` runs when node_modules is missing or was installed from another lock.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise BenchFailure("the load generator needs Node.js (20 or newer) and npm on PATH")
    digest = hashlib.sha256((LOADGEN / "package-lock.json").read_bytes()).hexdigest()
    stamp = LOADGEN / "node_modules" / ".installed-from"
    if not stamp.exists() or stamp.read_text() != digest:
        subprocess.run(
            [npm, "ci", "--prefix", str(LOADGEN), "--no-audit", "--no-fund", "--loglevel=error"],
            check=True,
            timeout=300,
        )
        stamp.write_text(digest)
    return node


async def loadgen(node: str, plan: dict[str, Any], server: Server, *, limit: float) -> Any:
    """Run one scenario of bench/loadgen against the server; its result, or BenchFailure."""
    plan = {**plan, "base": server.url, "serverPid": server.pid, "clkTck": os.sysconf("SC_CLK_TCK")}
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bench-plan-") as file:
        json.dump(plan, file)
        file.flush()
        process = await asyncio.create_subprocess_exec(
            *pinned([node, str(LOADGEN / "loadgen.mjs"), file.name], LOADGEN_CORE),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), limit)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise BenchFailure(f"the load generator ran over its {limit:.0f} s") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
    lines = out.decode().strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise BenchFailure(
            f"the load generator exited with {process.returncode} and no result"
        ) from None
    if not result.get("ok") or process.returncode != 0:
        raise BenchFailure(str(result.get("error", result)), result.get("figures"))
    del result["ok"]
    return result
