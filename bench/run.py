"""The benchmark run: Parley and its in-run baselines, every scenario, one report.

Each scenario starts the baseline and then Parley afresh (the server on core
0), drives both with the same Node load generator (bench/loadgen, on core 1)
and reports Parley's figures as ratios to the baseline's. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import processes
from bench.processes import (
    LOADGEN_CORE,
    ROOT,
    SERVER_CORE,
    BenchFailure,
    Server,
    all_cores,
    can_pin,
    free_port,
    reachable,
    run_command,
    serving,
)
from bench.seed import Room, World, seed

STARTED = time.monotonic()


def say(text: str) -> None:
    """Progress, on stderr: the table and the JSON line alone go to stdout."""
    print(f"bench [{time.monotonic() - STARTED:6.1f} s] {text}", file=sys.stderr, flush=True)


SCENARIOS = ("fanout", "rooms", "history", "send", "trivial", "idle", "soak")

# The full run, and the seconds-long smoke run (exactness and that everything
# runs; its figures mean nothing).
FULL: dict[str, Any] = {
    "users": 250,
    "subscribers": [100, 500, 1000],
    "deliveries": 20_000,
    "rate": 100.0,
    "rooms": 200,
    "room_size": 5,
    "room_rates": [200.0, 400.0, 800.0],
    "room_seconds": 10.0,
    "http_seconds": 10.0,
    "warmup_seconds": 2.0,
    "idle_sockets": [1000, 5000],
    "soak_seconds": 120.0,
    "soak_churners": 200,
    "soak_rate": 50.0,
    "soak_stay": [1.0, 5.0],
    "settle": 3.0,
    "timeout": 180.0,
}
SMOKE: dict[str, Any] = {
    "users": 12,
    "subscribers": [10],
    "deliveries": 100,
    "rate": 100.0,
    "rooms": 4,
    "room_size": 3,
    "room_rates": [8.0],
    "room_seconds": 0.5,
    "http_seconds": 0.5,
    "warmup_seconds": 0.1,
    "idle_sockets": [20],
    "soak_seconds": 1.5,
    "soak_churners": 6,
    "soak_rate": 10.0,
    "soak_stay": [0.2, 0.8],
    "settle": 0.3,
    "timeout": 30.0,
}
P99_TARGET_MS = 100.0
PARLEY = "parley"

HISTORY = """
query ($id: ID!) {
  messages(conversationId: $id, last: 50) {
    edges {
      cursor
      node {
        id seq kind body createdAt editedAt
        author { id username displayName }
        replyTo { id seq body author { id username } }
        reactions { emoji count viewerHasReacted }
      }
    }
    pageInfo { hasPreviousPage hasNextPage startCursor endCursor }
  }
}
"""
SEND = """
mutation ($i: SendMessageInput!) {
  sendMessage(input: $i) { id seq kind body createdAt author { id username } }
}
"""


# --------------------------------------------------------------------- options


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Parley against in-run baselines; prints a table and a JSON line.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"which to run, of {', '.join(SCENARIOS)} (default: all)",
    )
    parser.add_argument("--smoke", action="store_true", help="seconds-long sizes, for CI")
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL + Redis instead of SQLite + memory://"
    )
    size = parser.add_argument_group("sizes (defaults: the full run, or --smoke's)")
    size.add_argument("--users", type=int, help="users registered, reused by every scenario")
    size.add_argument("--subscribers", type=int, nargs="+", help="fanout: audiences N")
    size.add_argument(
        "--messages", type=int, help="fanout: messages M (default: --deliveries / N, 20-500)"
    )
    size.add_argument("--deliveries", type=int, help="fanout: deliveries aimed at per run")
    size.add_argument("--rate", type=float, help="fanout: the fixed rate, messages/s")
    size.add_argument("--rooms", type=int, help="rooms: how many groups")
    size.add_argument("--room-size", type=int, help="rooms: subscribed members per group")
    size.add_argument(
        "--room-rates",
        type=float,
        nargs="+",
        help="rooms: total rates tried in turn, messages/s, until Parley's p99 reaches 100 ms",
    )
    size.add_argument("--room-seconds", type=float, help="rooms: seconds of sending per rate")
    size.add_argument("--http-seconds", type=float, help="history, send, trivial: seconds each")
    size.add_argument("--warmup-seconds", type=float, help="unmeasured seconds before those")
    size.add_argument("--idle-sockets", type=int, nargs="+", help="idle: socket counts")
    size.add_argument("--soak-seconds", type=float, help="soak: duration")
    size.add_argument("--soak-churners", type=int, help="soak: clients coming and going")
    size.add_argument("--soak-rate", type=float, help="soak: messages/s sent meanwhile")
    size.add_argument(
        "--soak-stay",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        help="soak: seconds each client stays subscribed, drawn between LOW and HIGH",
    )
    size.add_argument("--settle", type=float, help="seconds to wait before reading memory")
    size.add_argument("--timeout", type=float, help="seconds any one wait for deliveries may take")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"no scenario {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}")
    profile = SMOKE if args.smoke else FULL
    for name, value in profile.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)
    args.scenarios = list(dict.fromkeys(args.scenarios)) or list(SCENARIOS)
    if args.users < max(16, args.room_size):
        args.users = max(16, args.room_size)
    return args


# --------------------------------------------------------------------- results


@dataclass
class Row:
    scenario: str
    target: str
    case: str
    figures: dict[str, Any]
    failed: bool = False  # measured, but the run went wrong (see the failures)
    ratios: dict[str, float | None] = field(default_factory=dict)


# What each scenario shows: (figure, heading); every one but loadgen_cpu gets
# a ratio on Parley's rows.
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "fanout": [
        ("deliveries_per_s", "deliveries/s"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("server_cpu", "server CPU"),
        ("loadgen_cpu", "loadgen CPU"),
    ],
    "rooms": [
        ("deliveries_per_s", "deliveries/s"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("server_cpu", "server CPU"),
        ("loadgen_cpu", "loadgen CPU"),
    ],
    "http": [
        ("requests_per_s", "requests/s"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("server_cpu", "server CPU"),
        ("loadgen_cpu", "loadgen CPU"),
    ],
    "idle": [
        ("kib_per_socket", "KiB/socket"),
        ("rss_before_kib", "RSS before KiB"),
        ("rss_with_kib", "RSS with KiB"),
        ("open_seconds", "open s"),
    ],
    "soak": [
        ("rss_before_kib", "RSS before KiB"),
        ("rss_max_kib", "RSS max KiB"),
        ("rss_after_kib", "RSS after KiB"),
        ("after_over_before", "after/before"),
        ("subscriptions", "subscriptions"),
        ("messages", "messages"),
        ("server_cpu", "server CPU"),
        ("loadgen_cpu", "loadgen CPU"),
    ],
}
TABLE_OF = {"history": "http", "send": "http", "trivial": "http"}
NOT_RATIOED = {"loadgen_cpu", "subscriptions", "messages"}


def with_ratios(rows: list[Row]) -> list[Row]:
    """Parley's figures as ratios to the baseline row of the same scenario and case."""
    baselines = {(r.scenario, r.case): r for r in rows if r.target != PARLEY and not r.failed}
    for row in rows:
        baseline = baselines.get((row.scenario, row.case))
        if row.target != PARLEY or baseline is None:
            continue
        for name, _ in COLUMNS[TABLE_OF.get(row.scenario, row.scenario)]:
            ours, theirs = row.figures.get(name), baseline.figures.get(name)
            if name in NOT_RATIOED or not isinstance(ours, int | float):
                continue
            if isinstance(theirs, int | float) and theirs != 0:
                row.ratios[name] = round(ours / theirs, 3)
            else:
                row.ratios[name] = None  # no baseline figure to divide by
    return rows


def _cell(row: Row, name: str) -> str:
    value = row.figures.get(name)
    text = "-" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
    if name in row.ratios:
        ratio = row.ratios[name]
        if ratio is None:
            text += " (-)"
        else:
            text += f" ({ratio:,.0f}x)" if ratio >= 100 else f" ({ratio:.3g}x)"
    return text


def table(rows: list[Row]) -> str:
    out: list[str] = []
    for scenario in dict.fromkeys(r.scenario for r in rows):
        group = [r for r in rows if r.scenario == scenario]
        columns = COLUMNS[TABLE_OF.get(scenario, scenario)]
        headings = ["case", "target", *(heading for _, heading in columns)]
        cells = [
            [
                r.case,
                r.target + (" FAILED" if r.failed else ""),
                *(_cell(r, name) for name, _ in columns),
            ]
            for r in group
        ]
        widths = [max(len(line[i]) for line in [headings, *cells]) for i in range(len(headings))]
        out.append(f"\n{scenario}")
        for line in [headings, *cells]:
            out.append(
                "  ".join(text.rjust(width) for text, width in zip(line, widths, strict=True))
            )
    return "\n".join(out)


# --------------------------------------------------------------------- backend


@dataclass
class Backend:
    postgres: bool
    data_dir: Path
    database_url: str
    broadcast_url: str
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def _base(self, port: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        return {**env, "PORT": str(port), "LOG_LEVEL": "warning", "SECRET_KEY": self.secret}

    def parley_env(self, port: int) -> dict[str, str]:
        env = {
            **self._base(port),
            "DATA_DIR": str(self.data_dir),
            # Tokens issued while seeding must outlive the whole run.
            "ACCESS_TOKEN_TTL_SECONDS": "86400",
            "ENVIRONMENT": "development",
        }
        if self.postgres:
            env.update(
                DATABASE_URL=self.database_url,
                BROADCAST_URL=self.broadcast_url,
                AUTO_MIGRATE="true",
            )
        else:
            # Set, so that neither the caller's environment nor a .env file changes them.
            env.update(DATABASE_URL="", BROADCAST_URL="memory://", AUTO_MIGRATE="true")
        return env

    def plain_env(self, port: int) -> dict[str, str]:
        return {
            **self._base(port),
            "DATABASE_URL": self.database_url,
            "BROADCAST_URL": self.broadcast_url,
        }


@asynccontextmanager
async def backend(postgres: bool) -> AsyncIterator[Backend]:
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as data_dir:
        if not postgres:
            yield Backend(
                postgres=False,
                data_dir=Path(data_dir),
                database_url=f"sqlite+aiosqlite:///{Path(data_dir) / 'parley.db'}",
                broadcast_url="memory://",
            )
            return
        if not await reachable("pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432"):
            raise BenchFailure("PostgreSQL is not reachable at 127.0.0.1:5432")
        if not await reachable("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping"):
            raise BenchFailure("Redis is not reachable at 127.0.0.1:6379")
        database = f"parley_bench_{uuid.uuid4().hex[:8]}"
        await run_command("createdb", "-h", "127.0.0.1", "-U", "postgres", database)
        try:
            yield Backend(
                postgres=True,
                data_dir=Path(data_dir),
                database_url=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{database}",
                broadcast_url="redis://127.0.0.1:6379",
            )
        finally:
            await run_command("dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", database)


# ------------------------------------------------------------------- scenarios


def raw_rooms(count: int, size: int) -> list[dict[str, Any]]:
    """The broadcaster's rooms in the load generator's plan: no accounts, only sizes."""
    return [{"key": f"room{i}", "sender": None, "members": [None] * size} for i in range(count)]


def graphql_rooms(rooms: Sequence[Room]) -> list[dict[str, Any]]:
    """Parley's rooms in the load generator's plan: each group, its sender and members."""
    return [
        {"key": r.id, "sender": r.sender.token, "members": [m.token for m in r.members]}
        for r in rooms
    ]


@dataclass
class Run:
    args: argparse.Namespace
    backend: Backend
    node: str
    world: World = field(default_factory=World)
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def parley(self, cpus: str | None = SERVER_CORE) -> AbstractAsyncContextManager[Server]:
        port = free_port()
        command = [sys.executable, "main.py"]
        return serving("parley", command, self.backend.parley_env(port), port, cpus=cpus)

    def broadcaster(self) -> AbstractAsyncContextManager[Server]:
        port = free_port()
        command = [sys.executable, "-m", "bench.broadcaster", str(port)]
        return serving("broadcaster", command, dict(os.environ), port, cpus=SERVER_CORE)

    def plain_api(self) -> AbstractAsyncContextManager[Server]:
        port = free_port()
        command = [sys.executable, "-m", "bench.plain_api"]
        return serving("plain API", command, self.backend.plain_env(port), port, cpus=SERVER_CORE)

    async def measure(
        self, scenario: str, target: str, case: str, server: Server, plan: dict[str, Any]
    ) -> Row | None:
        """One load-generator run; its row, or None (and a failure) when it went wrong."""
        label = f"{scenario} {case} {target}"
        say(f"{label} …")
        timeout = float(self.args.timeout)
        plan = {"scenario": scenario, "timeoutMs": round(timeout * 1000), **plan}
        began = time.monotonic()
        try:
            figures = await processes.loadgen(self.node, plan, server, limit=4 * timeout + 600)
        except BenchFailure as failure:
            self.failures.append(f"{label}: {failure}")
            say(f"FAILED {label}: {failure}")
            if failure.figures:
                # Shown and marked FAILED; a failed baseline is never divided by.
                self.rows.append(Row(scenario, target, case, failure.figures, failed=True))
            return None
        say(f"{label}: {time.monotonic() - began:.1f} s")
        row = Row(scenario=scenario, target=target, case=case, figures=figures)
        self.rows.append(row)
        return row

    # ---------------------------------------------------------------- fanout

    async def fanout(self) -> None:
        crowd = self.world.crowd
        assert crowd is not None
        for n in self.args.subscribers:
            m = self.args.messages or max(20, min(500, self.args.deliveries // n))
            modes: list[tuple[str, dict[str, Any]]] = [
                (f"N={n} M={m} 4 in flight", {"inFlight": 4}),
                (f"N={n} M={m} {self.args.rate:g}/s", {"rate": self.args.rate}),
            ]
            async with self.broadcaster() as server:
                for case, mode in modes:
                    plan = {
                        "target": "raw",
                        "room": {"key": "crowd", "sender": None},
                        "subscribers": [None] * n,
                        "messages": m,
                        **mode,
                    }
                    await self.measure("fanout", "broadcaster", case, server, plan)
            async with self.parley() as server:
                for case, mode in modes:
                    plan = {
                        "target": "graphql",
                        "room": {"key": crowd.id, "sender": crowd.sender.token},
                        "subscribers": [self.world.user(i).token for i in range(n)],
                        "messages": m,
                        **mode,
                    }
                    await self.measure("fanout", PARLEY, case, server, plan)

    # ----------------------------------------------------------------- rooms

    async def rooms(self) -> None:
        rooms = self.world.rooms
        size = self.args.room_size
        for rate in sorted(self.args.room_rates):
            case = f"{len(rooms)} rooms of {size} at {rate:g}/s"
            common = {"rate": rate, "seconds": self.args.room_seconds}
            async with self.broadcaster() as server:
                raw = raw_rooms(len(rooms), size)
                await self.measure(
                    "rooms", "broadcaster", case, server, {"target": "raw", **common, "rooms": raw}
                )
            async with self.parley() as server:
                ours = graphql_rooms(rooms)
                row = await self.measure(
                    "rooms", PARLEY, case, server, {"target": "graphql", **common, "rooms": ours}
                )
            if row is None or row.figures["p99_ms"] >= P99_TARGET_MS:
                break
        tried = [r for r in self.rows if r.scenario == "rooms"]
        for target in ("broadcaster", PARLEY):
            under = [
                r.figures["rate"]
                for r in tried
                if r.target == target and r.figures["p99_ms"] < P99_TARGET_MS
            ]
            self.summary[f"rooms_best_rate_{target}"] = max(under) if under else None
        best = self.summary[f"rooms_best_rate_{PARLEY}"]
        baseline = self.summary["rooms_best_rate_broadcaster"]
        self.notes.append(
            f"rooms: the highest total rate with p99 < {P99_TARGET_MS:g} ms, of "
            f"{', '.join(f'{r:g}' for r in sorted(self.args.room_rates))}/s tried: "
            f"parley {f'{best:g}/s' if best else 'none'}, "
            f"broadcaster {f'{baseline:g}/s' if baseline else 'none'} "
            "(rates stop after the first at which Parley misses it)"
        )

    # ------------------------------------------------------------------ HTTP

    async def http(self, scenarios: list[str]) -> None:
        history, sending = self.world.history, self.world.sending
        assert history is not None and sending is not None
        trivial_body = json.dumps({"query": "{ __typename }"})
        body = "x" * 40
        ours: dict[str, dict[str, Any]] = {
            "trivial": {"requests": [{"path": "/graphql", "body": trivial_body}], "concurrency": 8},
            "history": {
                "requests": [
                    {
                        "path": "/graphql",
                        "body": json.dumps({"query": HISTORY, "variables": {"id": history.id}}),
                        "token": m.token,
                    }
                    for m in history.members
                ],
                "concurrency": 8,
                "expectEdges": 50,
            },
            "send": {
                "requests": [
                    {
                        "path": "/graphql",
                        "body": json.dumps(
                            {
                                "query": SEND,
                                "variables": {"i": {"conversationId": sending.id, "body": body}},
                            }
                        ),
                        "token": m.token,
                    }
                    for m in sending.members
                ],
                "concurrency": 16,
            },
        }
        theirs: dict[str, dict[str, Any]] = {
            "trivial": {"requests": [{"path": "/trivial", "body": trivial_body}]},
            "history": {
                "requests": [
                    {
                        "path": "/history",
                        "body": json.dumps({"conversationId": history.id, "last": 50}),
                        "token": m.token,
                    }
                    for m in history.members
                ]
            },
            "send": {
                "requests": [
                    {
                        "path": "/send",
                        "body": json.dumps({"conversationId": sending.id, "body": body}),
                        "token": m.token,
                    }
                    for m in sending.members
                ]
            },
        }
        timing = {"seconds": self.args.http_seconds, "warmupSeconds": self.args.warmup_seconds}
        cases = {
            "trivial": "{ __typename }, 8 in flight",
            "history": "messages(last: 50), 8 in flight",
            "send": "sendMessage, 16 in flight",
        }
        answers: list[Any] = []
        async with self.plain_api() as server:
            answers.append(await _answer(server, theirs["history"]["requests"][0]))
            for name in scenarios:
                plan = {"scenario": "http", "check": name, **timing, **ours[name], **theirs[name]}
                await self.measure(name, "plain API", cases[name], server, plan)
        async with self.parley() as server:
            answers.append(await _answer(server, ours["history"]["requests"][0]))
            for name in scenarios:
                plan = {"scenario": "http", "check": name, **timing, **ours[name]}
                await self.measure(name, PARLEY, cases[name], server, plan)
        if answers[0] != answers[1]:
            # The baseline stands for Parley's work only while it answers the same.
            self.failures.append(
                "history: the plain API's answer is no longer Parley's: "
                f"{json.dumps(answers[0])[:300]}… against {json.dumps(answers[1])[:300]}…"
            )

    # ------------------------------------------------------------------ idle

    async def idle(self) -> None:
        crowd = self.world.crowd
        assert crowd is not None
        for n in self.args.idle_sockets:
            case = f"{n} sockets"
            common = {"settleMs": round(self.args.settle * 1000), "warmup": min(10, n)}
            async with self.broadcaster() as server:
                plan = {
                    "target": "raw",
                    "room": {"key": "crowd", "sender": None},
                    "subscribers": [None] * n,
                    **common,
                }
                await self.measure("idle", "broadcaster", case, server, plan)
            async with self.parley() as server:
                plan = {
                    "target": "graphql",
                    "room": {"key": crowd.id, "sender": crowd.sender.token},
                    "subscribers": [self.world.user(i).token for i in range(n)],
                    **common,
                }
                await self.measure("idle", PARLEY, case, server, plan)

    # ------------------------------------------------------------------ soak

    async def soak(self) -> None:
        rooms = self.world.rooms
        low, high = self.args.soak_stay
        case = (
            f"{self.args.soak_seconds:g} s, {self.args.soak_churners} churning, "
            f"{self.args.soak_rate:g} msg/s"
        )
        common = {
            "seconds": self.args.soak_seconds,
            "churners": self.args.soak_churners,
            "rate": self.args.soak_rate,
            "stayMs": [round(low * 1000), round(high * 1000)],
            "settleMs": round(self.args.settle * 1000),
        }
        size = self.args.room_size
        async with self.broadcaster() as server:
            raw = raw_rooms(len(rooms), size)
            await self.measure(
                "soak", "broadcaster", case, server, {"target": "raw", **common, "rooms": raw}
            )
        async with self.parley() as server:
            ours = graphql_rooms(rooms)
            await self.measure(
                "soak", PARLEY, case, server, {"target": "graphql", **common, "rooms": ours}
            )


async def _answer(server: Server, request: dict[str, Any]) -> Any:
    """One answer to the request, parsed (read before the history is measured)."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        response = await http.post(
            request["path"],
            content=request["body"],
            headers={
                "Authorization": f"Bearer {request['token']}",
                "Content-Type": "application/json",
            },
        )
        return response.json()


# ------------------------------------------------------------------------ main


def _commit() -> str:
    def git(*args: str) -> str:
        found = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return found.stdout.strip() if found.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


async def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    sockets = max(
        [*args.idle_sockets, *args.subscribers, args.rooms * args.room_size + args.soak_churners]
    )
    processes.raise_fd_limit(sockets)
    if can_pin():
        # This process waits while the load generator works: on the load generator's core.
        os.sched_setaffinity(0, {int(LOADGEN_CORE)})
    else:
        say("fewer than two cores (or no taskset): nothing is pinned")
    node = processes.ensure_loadgen()
    async with backend(args.postgres) as chosen:
        bench = Run(args=args, backend=chosen, node=node)
        say(f"seeding: {args.users} users …")
        # Seeding is not measured: the server may use every core (argon2 is slow).
        async with bench.parley(cpus=all_cores() if can_pin() else None) as server:
            bench.world = await seed(
                server.url, users=args.users, rooms=args.rooms, room_size=args.room_size
            )
        say("seeded")
        steps: dict[str, Callable[[], Awaitable[None]]] = {
            "fanout": bench.fanout,
            "rooms": bench.rooms,
            "idle": bench.idle,
            "soak": bench.soak,
        }
        http = [name for name in args.scenarios if name in TABLE_OF]
        for name in args.scenarios:
            # A server that dies or will not start fails its scenario; the others still run.
            try:
                if name in steps:
                    await steps[name]()
                elif name == http[0]:
                    await bench.http(http)
            except BenchFailure as failure:
                bench.failures.append(f"{name}: {failure}")
                say(f"FAILED {name}: {failure}")
    rows = with_ratios(bench.rows)
    print(table(rows))
    if bench.notes:
        print("\n" + "\n".join(bench.notes))
    if bench.failures:
        print("\nFAILED:\n  " + "\n  ".join(bench.failures))
    report = {
        "bench": "parley",
        "date": time.strftime("%Y-%m-%d"),
        "commit": _commit(),
        "nproc": os.cpu_count(),
        "arch": platform.machine(),
        "backend": "postgresql+redis" if args.postgres else "sqlite+memory",
        "smoke": args.smoke,
        "pinned": can_pin(),
        "seconds": round(time.monotonic() - started),
        "ok": not bench.failures,
        "rows": [
            {
                "scenario": r.scenario,
                "target": r.target,
                "case": r.case,
                "failed": r.failed,
                "figures": r.figures,
                "ratios": r.ratios,
            }
            for r in rows
        ],
        "summary": bench.summary,
        "failures": bench.failures,
    }
    print(json.dumps(report, ensure_ascii=False))
    return 0 if not bench.failures else 1


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    try:
        return asyncio.run(run(args))
    except BenchFailure as failure:
        print(f"bench: FAILED: {failure}", file=sys.stderr)
        return 1
