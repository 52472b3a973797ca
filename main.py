"""Parley: settings, lifespan (engine, broadcaster), routers, and the command line.

python main.py            serve (embedded defaults: SQLite + memory://)
python main.py migrate    apply database migrations (PostgreSQL deployments)
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, cast, overload

import uvicorn
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.exceptions import MissingQueryError
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLRequestData
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from auth.tokens import TokenService, bearer_token
from db.engine import create_engine, create_sessionmaker, is_sqlite
from db.migrate import NotMigrated, check_migrated, new_revision, upgrade
from resolvers.context import Context, Services
from resolvers.live import connections
from resolvers.live.broker import Broker
from resolvers.live.feeds import Feeds
from resolvers.live.legacy_protocol import AnyOperationGraphQLWSHandler
from resolvers.live.presence import create_presence
from resolvers.live.publisher import Publisher
from resolvers.live.transport_ws_protocol import ValidatingGraphQLTransportWSHandler
from resolvers.live.websocket_adapter import FittingCloseReasonWebSocketAdapter
from schema.extensions import no_such_operation
from schema.schema import schema

logger = logging.getLogger("parley")

SCHEMA_FILE = Path(__file__).parent / "schema.graphql"

PLACEHOLDER_SECRETS = {"", "changethis", "change-me", "changeme", "secret", "dev", "development"}


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
    cors_origins: Annotated[list[str], NoDecode] = ["*"]
    log_level: str = "INFO"

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
        feeds = Feeds(broker, sessionmaker, resync_seconds=settings.live_resync_seconds)
        await feeds.start()
        presence = create_presence(
            settings.broadcast_url,
            ttl_seconds=settings.presence_ttl_seconds,
            seen=lambda user_ids: services.mark_seen(user_ids),
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

    app = FastAPI(title="Parley", lifespan=lifespan)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
    )
    app.include_router(
        ParleyRouter(
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
        ),
        prefix="/graphql",
    )

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


class ParleyRouter(GraphQLRouter[Context, None]):
    """Strawberry's router, answering every request it refuses in GraphQL's error shape.

    Strawberry refuses a request it cannot take (not JSON, a mutation over
    GET, ...) with a plain-text HTTPException, and a few more (a body that
    is not UTF-8, JSON that is no object) with a plain 500. Here the body is
    checked before anything runs, and every refusal is a JSON
    ``{"errors": [{"message", "extensions": {"code"}}]}`` with its 4xx status.
    What is wrong inside a well-formed request (its variables, its document)
    is answered by the schema as a GraphQL error, as over a WebSocket.
    """

    graphql_ws_handler_class = AnyOperationGraphQLWSHandler
    graphql_transport_ws_handler_class = ValidatingGraphQLTransportWSHandler
    websocket_adapter_class = FittingCloseReasonWebSocketAdapter

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await connections.accept(context)
        return UnsetType()

    @overload
    async def run(
        self, request: Request, context: Context = ..., root_value: None = ...
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: Context = ..., root_value: None = ...
    ) -> WebSocket: ...

    async def run(
        self,
        request: Request | WebSocket,
        context: Context = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        try:
            return await super().run(request, context, root_value)
        except HTTPException as refused:
            # The routes would answer this in plain text.
            return self.request_error(refused.status_code, refused.reason)

    def request_error(self, status_code: int, message: str) -> Response:
        body = {"errors": [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]}
        # encode_json escapes what is not ASCII, so no message can fail to encode.
        return Response(self.encode_json(body), status_code, media_type="application/json")

    def decode_json(self, data: str | bytes) -> object:
        """JSON that cannot be read as such is a JSON error, for HTTP and WebSocket alike.

        json.loads also raises ValueError for integers of more than 4300
        digits and RecursionError for deep nesting; uncaught, those are a 500
        over HTTP and a crashed socket.
        """
        try:
            return super().decode_json(data)
        except (ValueError, RecursionError) as error:
            if isinstance(error, json.JSONDecodeError):
                raise
            raise json.JSONDecodeError(f"unreadable JSON ({type(error).__name__})", "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        # Bytes are a body; text is a GET parameter (variables, extensions).
        where = "The request body" if isinstance(data, bytes) else "A query parameter"
        if isinstance(data, bytes):
            # JSON travels as UTF-8 (RFC 8259, GraphQL over HTTP); json.loads
            # would guess UTF-16 too, and crash on bytes that are neither.
            try:
                data = data.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise HTTPException(400, f"{where} is not UTF-8-encoded JSON.") from None
        try:
            return self.decode_json(data)
        except json.JSONDecodeError:
            raise HTTPException(400, f"{where} is not valid JSON.") from None

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        content_type, _ = parse_content_type(request.content_type or "")
        if request.method != "POST" or "application/json" not in content_type:
            # GET parameters are text and strings by construction; other
            # bodies Strawberry refuses.
            return await super().parse_http_body(request)
        body = self.parse_json(await request.get_body())
        if not isinstance(body, dict):
            # A list would be a batch, which this server does not take.
            raise HTTPException(
                400,
                'The request body must be a JSON object: {"query": ..., "variables": {...}, '
                '"operationName": ...}.',
            )
        for key, kinds, what in _REQUEST_FIELDS:
            if not isinstance(body.get(key), kinds):
                raise HTTPException(400, f"{key} must be {what}, if provided.")
        return GraphQLRequestData(
            query=body.get("query"),
            variables=body.get("variables"),
            operation_name=body.get("operationName"),
            extensions=body.get("extensions"),
        )

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """Kept in step with AsyncBaseHTTPView.execute_single, but for two answers.

        Strawberry lets a subscription through a plain POST or GET (for
        streaming transports this router does not enable), runs its field as
        a query, and the client gets a masked "cannot return null".
        Subscriptions are served over WebSocket; here they are a 400 before
        anything runs. And an operationName that names no operation is
        answered as a GraphQL error, as over a WebSocket, not a plain 400.
        """
        method = request_adapter.method
        allowed = OperationType.from_http(method) - {OperationType.SUBSCRIPTION}
        if method == "GET" and not self.allow_queries_via_get:
            allowed -= {OperationType.QUERY}
        try:
            return await self.schema.execute(
                request_data.query,
                root_value=root_value,
                variable_values=request_data.variables,
                context_value=context,
                operation_name=request_data.operation_name,
                allowed_operation_types=allowed,
                operation_extensions=request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            # Raised past the extensions, so ErrorCodes never sees it here.
            return ExecutionResult(data=None, errors=[no_such_operation(error.operation_name)])
        except InvalidOperationTypeError as error:
            if error.operation_type is OperationType.SUBSCRIPTION:
                raise HTTPException(
                    400,
                    "Subscriptions are not served over HTTP: open a WebSocket on this path "
                    "(graphql-transport-ws or graphql-ws) and subscribe there.",
                ) from None
            raise HTTPException(400, error.as_http_error_reason(method)) from None
        except MissingQueryError:
            raise HTTPException(400, "The request has no GraphQL document (query).") from None


# What a GraphQL-over-HTTP request body may hold, beyond which nothing runs.
_REQUEST_FIELDS: list[tuple[str, type | tuple[type, ...], str]] = [
    ("query", (str, type(None)), "a string"),
    ("variables", (dict, type(None)), "an object"),
    ("operationName", (str, type(None)), "a string"),
    ("extensions", (dict, type(None)), "an object"),
]


async def get_context(connection: HTTPConnection) -> AsyncIterator[Context]:
    context = Context(
        services=connection.app.state.services,
        access_token=bearer_token(connection.headers.get("authorization")),
    )
    try:
        yield context
    finally:
        # For a WebSocket this runs when it closes.
        await connections.release(context)


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
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ws_ping_interval=20,
        ws_ping_timeout=20,
        log_level=settings.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
