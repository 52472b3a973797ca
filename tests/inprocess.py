"""The app in this process (ASGI, lifespan and all), for tests that look inside:
SQL statement counts, and subscriptions driven with ``schema.subscribe``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from main import Settings, create_app
from resolvers.context import Services
from tests.backends import database
from tests.client import Client
from tests.server import redis_namespace


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)


@dataclass
class InProcess:
    app: FastAPI
    client: Client
    counter: StatementCounter

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services


@asynccontextmanager
async def in_process(tmp_path: Path, **settings: Any) -> AsyncIterator[InProcess]:
    with database(tmp_path) as (database_url, broadcast_url):
        app = create_app(
            Settings(
                data_dir=tmp_path,
                database_url=database_url,
                broadcast_url=broadcast_url,
                auto_migrate=True,
                redis_namespace=redis_namespace(database_url),
                **settings,
            )
        )
        async with app.router.lifespan_context(app):
            engine = app.state.services.sessionmaker.kw["bind"]
            counter = StatementCounter()
            event.listen(engine.sync_engine, "before_cursor_execute", counter)
            client = Client("http://parley.test")
            client.http = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://parley.test"
            )
            try:
                yield InProcess(app=app, client=client, counter=counter)
            finally:
                await client.http.aclose()
