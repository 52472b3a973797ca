"""Alembic, driven from code: ``python main.py migrate`` and the embedded start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database to ``revision``. Runs its own event loop: call from a thread."""
    command.upgrade(alembic_config(database_url), revision)


def new_revision(message: str) -> None:
    """Autogenerate a migration from the models' difference to the current head."""
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/head.db"
        upgrade(url)
        command.revision(alembic_config(url), message=message, autogenerate=True)
