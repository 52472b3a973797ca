"""The migrations build exactly the tables the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers the tables)
from db.migrate import upgrade
from tests.backends import create_pg_database, drop_pg_database


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


def _check(url: str) -> None:
    # given a database migrated from nothing
    upgrade(url)
    # then the models and the migrated schema agree
    assert _differences(url) == [], "models changed: add a migration (see README)"
    # and migrating again is a no-op
    upgrade(url)


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    _check(f"sqlite+aiosqlite:///{tmp_path / 'migrated.db'}")


@pytest.mark.postgres
def test_postgres_migrations_match_models() -> None:
    url = create_pg_database()
    try:
        _check(url)
    finally:
        drop_pg_database(url)
