"""Parley: settings, lifespan (engine, broker, feeds), the routes, and the command line.

python main.py            serve (embedded defaults: SQLite + memory://)
python main.py migrate    apply database migrations (PostgreSQL deployments)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal, cast

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from auth.tokens import TokenService
from db.engine import create_engine, create_sessionmaker, is_sqlite
from db.migrate import NotMigrated, check_migrated, new_revision, upgrade
from resolvers.context import Context, Services
from resolvers.live import sharing
from resolvers.live.broker import Broker
from resolvers.live.feeds import Feeds
from resolvers.live.presence import create_presence
from resolvers.live.publisher import Publisher
from resolvers.live.websocket_protocol import WebSocketProtocol
from resolvers.router import ParleyApp, ParleyRouter, get_context
from schema.schema import schema

logger = logging.getLogger("parley")

SCHEMA_FILE = Path(__file__).parent / "schema.graphql"

PLACEHOLDER_SECRETS = {"", "changethis", "change-me", "changeme", "secret", "dev", "development"}


GC_THRESHOLDS = (5_000, 20, 20)


class Settings(BaseSettings):
    """Every setting is an environment variable of the same name (see the README)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    database_url: str = ""
    broadcast_url: str = "memory://"
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    access_token_ttl_seconds: int = Field(default=900, ge=5, le=86400)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)
    auto_migrate: bool | None = None
    live_resync_seconds: float = Field(default=3.0, gt=0)
    presence_ttl_seconds: float = Field(default=30.0, ge=1)
    # The prefix of the keys kept in Redis (presence): deployments sharing one
    # Redis need different ones, or they see each other's users online.
    redis_namespace: str = Field(default="parley", min_length=1)
    cors_origins: Annotated[list[str], NoDecode] = ["*"]
    log_level: str = "INFO"
    # permessage-deflate: zlib state for each socket (about 45 KB measured)
    # and a compression per frame per subscriber, for frames of a few
    # hundred bytes. Off unless asked for.
    ws_compression: bool = False

    @model_validator(mode="before")
    @classmethod
    def _split_origins(cls, values: dict[str, object]) -> dict[str, object]:
        origins = values.get("cors_origins")
        if isinstance(origins, str):
            values["cors_origins"] = [o.strip() for o in origins.split(",") if o.strip()]
        return values

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.data_dir / 'parley.db'}"
        if self.auto_migrate is None:
            # The embedded default migrates itself; shared databases are
            # migrated once per deployment with `python main.py migrate`.
            self.auto_migrate = is_sqlite(self.database_url)
        if self.environment == "production":
            if self.secret_key.strip().lower() in PLACEHOLDER_SECRETS or len(self.secret_key) < 32:
                raise ValueError(
                    "SECRET_KEY must be a random value of at least 32 characters in production, "
                    "e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
                )
        return self

    def resolved_secret_key(self) -> str:
        """The configured secret, or in development one generated once and kept on disk."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
            logger.warning(
                "SECRET_KEY is not set: generated a development secret in %s. "
                "Set SECRET_KEY (and ENVIRONMENT=production) before going live.",
                path,
            )
        return path.read_text().strip()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if is_sqlite(settings.database_url):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.auto_migrate:
            await asyncio.to_thread(upgrade, settings.database_url)
        engine = create_engine(settings.database_url)
        if not settings.auto_migrate:
            await check_migrated(engine)
        sessionmaker = create_sessionmaker(engine)
        broker = Broker(settings.broadcast_url)
        await broker.connect()
        # Each call of the sessionmaker is one short session, as feeds need.
        feeds = Feeds(
            broker,
            sessionmaker,
            resync_seconds=settings.live_resync_seconds,
            prepare=sharing.prerender,
        )
        await feeds.start()
        presence = create_presence(
            settings.broadcast_url,
            ttl_seconds=settings.presence_ttl_seconds,
            seen=lambda user_ids: services.mark_seen(user_ids),
            namespace=settings.redis_namespace,
        )
        services = app.state.services = Services(
            sessionmaker=sessionmaker,
            tokens=TokenService(
                settings.resolved_secret_key(),
                access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            ),
            broker=broker,
            publisher=Publisher(broker),
            feeds=feeds,
            presence=presence,
            refresh_ttl=timedelta(days=settings.refresh_token_ttl_days),
        )
        await presence.start()
        try:
            yield
        finally:
            await feeds.stop()
            await presence.stop()
            await broker.disconnect()
            await engine.dispose()

    app = ParleyApp(title="Parley", lifespan=lifespan)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
    )
    router = ParleyRouter(
        schema,
        # A FastAPI dependency with cleanup (see get_context), which the
        # router's annotation does not spell out.
        context_getter=cast("Callable[..., Awaitable[Context]]", get_context),
        graphql_ide="graphiql",
        # The legacy graphql-ws protocol keeps clients alive with "ka"
        # messages; graphql-transport-ws relies on WebSocket pings
        # (uvicorn's ws_ping_interval) and the client's keepAlive.
        keep_alive=True,
        keep_alive_interval=15,
        allowed_origins=settings.cors_origins,
    )
    app.include_router(router, prefix=app.graphql_path)
    app.graphql_router = router

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def schema_sdl() -> str:
    return schema.as_str() + "\n"


async def _check_migrated(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await check_migrated(engine)
    finally:
        await engine.dispose()


def main(argv: list[str]) -> int:
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if argv[1:2] == ["migrate"]:
        if is_sqlite(settings.database_url):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        upgrade(settings.database_url)
        print(f"migrated {settings.database_url.split('@')[-1]}")
        return 0
    if argv[1:2] == ["revision"] and len(argv) == 3:
        new_revision(argv[2])
        return 0
    if argv[1:2] == ["schema"]:
        SCHEMA_FILE.write_text(schema_sdl())
        print(f"wrote {SCHEMA_FILE}")
        return 0
    if argv[1:]:
        print(__doc__)
        return 2
    if not settings.auto_migrate:
        # Checked again at start-up; here a mismatch ends with one clear line.
        try:
            asyncio.run(_check_migrated(settings.database_url))
        except NotMigrated as error:
            logger.error("refusing to start: %s", error)
            return 1
    app = create_app(settings)
    # Everything imported and built so far lives as long as the process: out
    # of the collector's sight, a full collection no longer walks the schema
    # and every module (they took 100-250 ms with 500 sockets open, a pause
    # every delivery waits out). Young collections run less often, too.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        ws=WebSocketProtocol,
        ws_per_message_deflate=settings.ws_compression,
        log_level=settings.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
