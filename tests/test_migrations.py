"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers the tables)
from db.migrate import head_revision, upgrade
from tests.backends import create_pg_database, drop_pg_database
from tests.server import ROOT


def _differences(url: str) -> list[object]:
    async def compare() -> list[object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(sync, opts={"compare_type": True}),
                        SQLModel.metadata,
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(compare())


def _snapshot(url: str) -> dict[str, object]:
    """The database's revision and every table's columns, indexes and constraints."""

    def read(sync: Connection) -> dict[str, object]:
        found = inspect(sync)
        tables: dict[str, object] = {
            table: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)],
                sorted(str(sorted(i.items())) for i in found.get_indexes(table)),
                sorted(str(sorted(u.items())) for u in found.get_unique_constraints(table)),
                sorted(str(sorted(f.items())) for f in found.get_foreign_keys(table)),
            )
            for table in sorted(found.get_table_names())
        }
        return {"revision": MigrationContext.configure(sync).get_current_revision(), **tables}

    async def take() -> dict[str, object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(take())


def _check(url: str) -> None:
    # given a database migrated from nothing
    upgrade(url)
    # then the models and the migrated schema agree
    assert _differences(url) == [], "models changed: add a migration (see README)"
    migrated = _snapshot(url)
    assert migrated["revision"] == head_revision()
    # and migrating again changes nothing
    upgrade(url)
    assert _snapshot(url) == migrated


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    _check(f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}")


@pytest.mark.postgres
def test_postgres_migrations_match_models() -> None:
    url = create_pg_database()
    try:
        _check(url)
    finally:
        drop_pg_database(url)


def _serve_unmigrated(database_url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": database_url,
        "AUTO_MIGRATE": "false",
        "PORT": "0",
    }
    return subprocess.run(
        [sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def _assert_refused(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "refusing to start" in lines[0]
    assert "none (never migrated)" in lines[0]
    assert str(head_revision()) in lines[0]
    assert "python main.py migrate" in lines[0]


def test_a_never_migrated_sqlite_database_is_refused_without_auto_migrate(tmp_path: Path) -> None:
    # given an empty database file and AUTO_MIGRATE=false
    # when the server starts
    result = _serve_unmigrated(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", tmp_path)
    # then it refuses in one line naming both revisions and the command to run
    _assert_refused(result)


@pytest.mark.postgres
def test_a_never_migrated_postgres_database_is_refused(tmp_path: Path) -> None:
    # given a new PostgreSQL database nobody migrated (AUTO_MIGRATE is off there by default)
    url = create_pg_database()
    try:
        # when the server starts
        result = _serve_unmigrated(url, tmp_path)
    finally:
        drop_pg_database(url)
    # then it refuses to serve
    _assert_refused(result)


def _run(url: str, statements: list[str]) -> list[tuple[object, ...]]:
    """Run statements on the database; the rows of the last one."""

    async def go() -> list[tuple[object, ...]]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                result = None
                for statement in statements:
                    result = await connection.execute(text(statement))
                return (
                    [tuple(row) for row in result.all()] if result and result.returns_rows else []
                )
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _check_reaction_keys(url: str) -> None:
    # given reactions stored before keys had one spelling: Ann's thumbs up twice
    # (two spellings), Bob's heart without its emoji selector
    upgrade(url, "0002")
    now = "'2026-01-01 00:00:00'"
    _run(
        url,
        [
            "INSERT INTO users (id, username, username_key, display_name, display_name_key,"
            f" created_at) VALUES (1, 'ann', 'ann', 'Ann', 'ann', {now}),"
            f" (2, 'bob', 'bob', 'Bob', 'bob', {now})",
            "INSERT INTO conversations (id, kind, is_public, created_at, last_activity_at,"
            f" last_seq) VALUES (1, 'GROUP', false, {now}, {now}, 1)",
            "INSERT INTO messages (id, conversation_id, seq, kind, body, created_at)"
            f" VALUES (1, 1, 1, 'TEXT', 'hi', {now})",
            "INSERT INTO reactions (id, message_id, user_id, emoji, created_at) VALUES"
            f" (1, 1, 1, '\U0001f44d\ufe0f', {now}), (2, 1, 1, '\U0001f44d', {now}),"
            f" (3, 1, 2, '\u2764', {now})",
        ],
    )
    # when the database is migrated
    upgrade(url)
    # then each user has one reaction per emoji, in the one spelling
    rows = _run(url, ["SELECT id, user_id, emoji FROM reactions ORDER BY id"])
    assert rows == [(2, 1, "\U0001f44d"), (3, 2, "\u2764\ufe0f")]


def test_sqlite_migration_gives_stored_reactions_one_spelling(tmp_path: Path) -> None:
    _check_reaction_keys(f"sqlite+aiosqlite:///{tmp_path / 'reactions.db'}")


@pytest.mark.postgres
def test_postgres_migration_gives_stored_reactions_one_spelling() -> None:
    url = create_pg_database()
    try:
        _check_reaction_keys(url)
    finally:
        drop_pg_database(url)
