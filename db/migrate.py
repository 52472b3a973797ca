"""Alembic, driven from code: ``python main.py migrate``, the embedded start-up, and the
start-up check that refuses a database whose schema is not the code's."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


class NotMigrated(Exception):
    """The database's schema revision is not the one this code needs."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``. Runs its own event loop: call from a thread."""
    command.upgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


async def database_revision(engine: AsyncEngine) -> str | None:
    """The revision the database was migrated to; None for a database never migrated."""

    def read(sync: Connection) -> str | None:
        # Alembic says at INFO which dialect it found; a start-up check need not.
        chatty = logging.getLogger("alembic.runtime.migration")
        level = chatty.level
        chatty.setLevel(logging.WARNING)
        try:
            return MigrationContext.configure(sync).get_current_revision()
        finally:
            chatty.setLevel(level)

    async with engine.connect() as connection:
        return await connection.run_sync(read)


async def check_migrated(engine: AsyncEngine) -> None:
    """Raise NotMigrated, saying what to run, unless the database is at the code's head."""
    head, current = head_revision(), await database_revision(engine)
    if current != head:
        raise NotMigrated(
            f"the database is at migration {current or 'none (never migrated)'} but this "
            f"version of Parley needs {head}: run `python main.py migrate` "
            "(or set AUTO_MIGRATE=true), then start again"
        )


def new_revision(message: str) -> None:
    """Autogenerate a migration from the models' difference to the current head."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/head.db"
        upgrade(url)
        command.revision(alembic_config(url), message=message, autogenerate=True)
