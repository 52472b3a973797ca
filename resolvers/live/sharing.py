"""Shared execution of subscriptions: each event rendered once, written to every subscriber.

Strawberry runs a subscription per subscriber: for every event, each one
executes its selection set and encodes JSON of its own, so the work per
message grows with the audience. Here, a WebSocket operation's stream
(``deliver``) renders each event once per *shape* -- the document, the
operation name and the variables its selection set uses -- and writes each
subscriber a pre-encoded frame that differs only in its operation id. The
render is memoised on the ``SharedEvent``, which the conversation's feed
loaded once for the whole process, so it lives exactly as long as the feed
keeps the event.

Rendering for everyone runs with no viewer. Whatever differs from viewer to
viewer (``viewerHasReacted``, ``unreadCount``, ``viewerRole``, any field that
asks the context or a loader for the viewer) raises ``ViewerNeeded`` there;
the shape is then marked as depending on the viewer, and from that event on
it is rendered once per viewer instead. Nothing needs a list of such fields,
and a field added later that reads the viewer can only make sharing finer,
never show one viewer another's view.

Authorization stays per subscriber and exact: the streams in
``subscriptions.py`` check access, replay ``afterSeq`` and end on removal as
before; only what a payload looks like is shared.

The socket handlers (``transport_ws_protocol.py``, ``legacy_protocol.py``)
say where an operation's frames go (``streaming_to``); without that (a test
calling the schema directly), ``deliver`` yields results for Strawberry to
execute one by one, as any subscription.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import aclosing, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import orjson
from cachetools import LRUCache
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    parse,
    visit,
)
from strawberry.types.graphql import OperationType

from db.models import UserRow
from resolvers.context import Context, OperationHandle, OperationScope, Services
from resolvers.live.common import on_live
from resolvers.live.snapshots import SharedEvent
from resolvers.loaders import Loaders, ViewerNeeded

if TYPE_CHECKING:
    from strawberry.schema.base import BaseSchema
    from strawberry.types import Info
    from strawberry.types.execution import ExecutionResult

T = TypeVar("T")

logger = logging.getLogger(__name__)

SUBSCRIPTION_ONLY = (OperationType.SUBSCRIPTION,)
# What a stream that failed ends with when even its error cannot be rendered.
RENDER_FAILED = orjson.dumps(
    {
        "data": None,
        "errors": [
            {"message": "Unexpected error.", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
        ],
    }
).decode()
SHAPES_KEPT = 512  # documents whose analysis is remembered
PRERENDER_WAIT_SECONDS = 0.05  # how long a feed waits for its renders before moving on


# ------------------------------------------------------------------ targets


class Adopter(Protocol):
    """A protocol handler that lets a live stream go on in a task of its own.

    Strawberry runs each operation as a task that holds, for as long as the
    stream lives, its extension runner, graphql-core's execution context and
    the generators between them: some 20 KB per subscription that a stream
    written straight to its socket never uses again. Once such a stream is
    live, ``deliver`` moves it to a task of its own; the handler takes that
    task as the operation's (the client's complete/stop and the socket's end
    cancel it) and the operation's own task ends without a word.
    """

    def adopt(self, operation_id: str, parent: asyncio.Task[Any], task: asyncio.Task[None]) -> bool:
        """Make task the operation's, if parent still is (False: the operation is gone)."""
        ...

    async def ended(self, operation_id: str, task: asyncio.Task[None]) -> None:
        """The adopted stream ended: the protocol's complete, and the id is free again."""
        ...

    async def stopped(self, operation_id: str) -> None:
        """The client stopped the adopted stream (its task was cancelled)."""
        ...


@dataclass(frozen=True, slots=True)
class Frames:
    """Where one WebSocket operation's results go, as text frames."""

    send_text: Callable[[str], Awaitable[None]]
    # The frame up to its payload: '{"id":"1","type":"next","payload":'.
    prefix: str
    operation_id: str
    adopter: Adopter

    async def send(self, payload: str) -> None:
        await self.send_text(self.prefix + payload + "}")


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """A WebSocket operation's frames, and what it asked for."""

    frames: Frames
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None

    @classmethod
    def of(
        cls,
        send_text: Callable[[str], Awaitable[None]],
        *,
        frame_type: str,
        operation_id: str,
        payload: dict[str, Any],
        adopter: Adopter,
    ) -> StreamTarget:
        head = orjson.dumps({"id": operation_id, "type": frame_type}).decode()
        return cls(
            frames=Frames(send_text, head[:-1] + ',"payload":', operation_id, adopter),
            query=payload["query"],
            operation_name=payload.get("operationName"),
            variables=payload.get("variables"),
        )


_target: ContextVar[StreamTarget | None] = ContextVar("parley_stream_target", default=None)


@runtime_checkable
class TextSocket(Protocol):
    """A socket that can take a frame already encoded (live/websocket_adapter.py)."""

    async def send_text(self, text: str) -> None: ...


@contextmanager
def streaming_to(
    socket: object,
    *,
    frame_type: str,
    message: Mapping[str, Any],
    adopter: Adopter,
) -> Iterator[None]:
    """Operations started inside (their tasks created) write their results to socket.

    Each protocol handler wraps Strawberry's start of an operation in this:
    ``frame_type`` is the protocol's result frame ("next", "data"), ``message``
    the client's subscribe/start message, ``adopter`` the handler, which takes
    a live stream's own task as the operation's.
    """
    if not isinstance(socket, TextSocket):
        yield
        return
    target = StreamTarget.of(
        socket.send_text,
        frame_type=frame_type,
        operation_id=message["id"],
        payload=dict(message["payload"]),
        adopter=adopter,
    )
    token = _target.set(target)
    try:
        yield
    finally:
        _target.reset(token)


# ------------------------------------------------------------------- shapes


@dataclass(slots=True)
class _Analysis:
    """What is known of one document and operation name."""

    # Variables the selection below the root field uses (the root field's own
    # arguments -- which conversation, afterSeq -- do not change a payload).
    used_variables: frozenset[str]
    per_viewer: bool = False


_analyses: LRUCache[tuple[str, str | None], _Analysis] = LRUCache(maxsize=SHAPES_KEPT)


def _analysis(target: StreamTarget) -> _Analysis:
    key = (target.query, target.operation_name)
    found = _analyses.get(key)
    if found is None:
        found = _analyses[key] = _Analysis(
            used_variables=variables_below_root(parse(target.query), target.operation_name)
        )
    return found


def variables_below_root(document: DocumentNode, operation_name: str | None) -> frozenset[str]:
    """The variables an operation uses anywhere but in its root fields' arguments."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    operation = next(
        (o for o in operations if o.name is not None and o.name.value == operation_name),
        operations[0] if operations else None,
    )
    if operation is None:
        return frozenset()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: set[str] = set()

    class Collect(Visitor):
        def enter_variable(self, node: VariableNode, *_args: object) -> None:
            names.add(node.name.value)

    def values(nodes: Iterable[Node]) -> None:
        for node in nodes:
            visit(node, Collect())

    seen: set[str] = set()

    def walk(selection_set: SelectionSetNode, root: bool) -> None:
        for selection in selection_set.selections:
            values(selection.directives or ())
            if isinstance(selection, FieldNode):
                if not root:
                    values(selection.arguments or ())
                if selection.selection_set is not None:
                    walk(selection.selection_set, root=False)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set, root)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in seen and name in fragments:
                    seen.add(name)
                    walk(fragments[name].selection_set, root)

    values(operation.directives or ())
    walk(operation.selection_set, root=True)
    return frozenset(names)


@dataclass(slots=True, weakref_slot=True)
class Shape:
    """A document, operation name and the variables its payloads depend on.

    One object for every subscriber of the same shape (while any is live):
    it holds the document's text and variables once, not per socket. The
    variables are the first subscriber's; they differ from another's only
    in the root field's arguments, which a rendering does not read.
    """

    key: str
    analysis: _Analysis
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    schema: BaseSchema

    @classmethod
    def of(cls, info: Info[Any, Any], target: StreamTarget) -> Shape:
        analysis = _analysis(target)
        variables = target.variables or {}
        used = {name: variables[name] for name in analysis.used_variables if name in variables}
        key = "\0".join(
            (
                target.operation_name or "",
                orjson.dumps(used, option=orjson.OPT_SORT_KEYS).decode(),
                target.query,
            )
        )
        shape = _shapes.get(key)
        if shape is None:
            shape = _shapes[key] = cls(
                key=key,
                analysis=analysis,
                query=target.query,
                operation_name=target.operation_name,
                variables=target.variables,
                schema=info.schema,
            )
        return shape


_shapes: weakref.WeakValueDictionary[str, Shape] = weakref.WeakValueDictionary()


# ---------------------------------------------------------------- rendering


@dataclass(slots=True)
class Stats:
    """What this process rendered and wrote (for tests and metrics)."""

    shared_renders: int = 0  # renders for every subscriber of a shape
    viewer_renders: int = 0  # renders for one viewer
    frames: int = 0  # frames written


stats = Stats()


class _Skip:
    """The stream does not deliver this item (convert said None)."""


SKIP = _Skip()


class _NeedsViewer:
    """Rendering for everyone reached a field that differs per viewer."""


NEEDS_VIEWER = _NeedsViewer()

Rendered = str | _Skip | _NeedsViewer


def prime(loaders: Loaders, event: SharedEvent, viewer_id: int | None) -> None:
    """Fill loaders from the rows the feed loaded once for everyone (None: for no one viewer)."""
    loaders.conversations.prime(event.conversation_id, event.conversation, force=True)
    for user in event.users.values():
        loaders.users.prime(user.id, user, force=True)
    for message in event.messages.values():
        loaders.messages.prime(message.id, message, force=True)
        loaders.reactions.prime(
            message.id, event.reaction_summaries(message.id, viewer_id), force=True
        )


@dataclass
class RenderContext(Context):
    """The context an event is rendered in: for one viewer, or (viewer None) for everyone."""

    event: SharedEvent | None = None
    for_viewer: UserRow | None = field(default=None)
    # Set (by schema.extensions.ErrorCodes) when a field needed the viewer.
    viewer_needed: bool = False

    def begin_operation(self) -> OperationHandle:
        handle = super().begin_operation()
        scope = handle.scope
        # Each read its own short session: a render may wait (presence, other
        # loaders) and must not hold SQLite's one connection meanwhile.
        scope.db.keep_short()
        viewer = self.for_viewer
        if viewer is not None:
            scope.set_viewer(viewer)
        if self.event is not None:
            prime(scope.loaders, self.event, viewer.id if viewer is not None else None)
        return handle

    async def viewer(self) -> UserRow | None:
        if self.for_viewer is None:
            raise ViewerNeeded("rendering for every viewer")
        return self.for_viewer


async def _render(
    services: Services,
    shape: Shape,
    item: T,
    convert: Callable[[T], object | None],
    viewer: UserRow | None,
) -> Rendered:
    root = convert(item)
    if root is None:
        return SKIP
    context = RenderContext(
        services=services,
        event=item if isinstance(item, SharedEvent) else None,
        for_viewer=viewer,
    )
    if viewer is None:
        stats.shared_renders += 1
    else:
        stats.viewer_renders += 1
    result = await shape.schema.execute(
        shape.query,
        variable_values=shape.variables,
        context_value=context,
        root_value=root,
        operation_name=shape.operation_name,
        allowed_operation_types=SUBSCRIPTION_ONLY,
    )
    if context.viewer_needed and viewer is None:
        return NEEDS_VIEWER
    return _encoded(result)


def _encoded(result: ExecutionResult) -> str:
    payload: dict[str, object] = {"data": result.data}
    if result.errors:
        payload["errors"] = [error.formatted for error in result.errors]
    if result.extensions:
        payload["extensions"] = result.extensions
    return orjson.dumps(payload).decode()


async def _render_error(services: Services, shape: Shape, error: Exception) -> str:
    """The result a stream that failed ends with, as the schema reports any field's error.

    The subscription's root field resolves to its root value; an exception
    there is raised as that field's error, so the error goes through the
    schema's extensions (codes, masking) as every other.
    """
    result = await shape.schema.execute(
        shape.query,
        variable_values=shape.variables,
        context_value=RenderContext(services=services),
        root_value=error,
        operation_name=shape.operation_name,
        allowed_operation_types=SUBSCRIPTION_ONLY,
    )
    return _encoded(result)


def _start(event: SharedEvent, key: object, render: Awaitable[Rendered], *, keep: bool) -> Any:
    """Begin a render under key; once done, the memo holds its result, not the task.

    A task kept there would tie the event, its rows and the task's context into
    a cycle only the cyclic collector frees. A failed render stays as its task,
    which re-raises to each subscriber that reads it.
    """
    task: asyncio.Future[Rendered] = asyncio.ensure_future(render)
    event.rendered[key] = task

    def settle(done: asyncio.Future[Rendered]) -> None:
        if event.rendered.get(key) is not done:
            return
        if not keep or done.cancelled():
            del event.rendered[key]
        elif done.exception() is None:  # (retrieved: no "never retrieved" warning)
            event.rendered[key] = done.result()

    task.add_done_callback(settle)
    return task


async def _memoised(
    event: SharedEvent,
    key: object,
    render: Callable[[], Awaitable[Rendered]],
    *,
    keep: bool = True,
) -> Rendered:
    """The event's rendering under key, made by the first subscriber that asks.

    It runs as a task of its own: a subscriber leaving mid-render must not
    cancel it for the others waiting on it. Unless kept, it is forgotten
    once done.
    """
    entry = event.rendered.get(key)
    if entry is None:
        entry = _start(event, key, render(), keep=keep)
    if not isinstance(entry, asyncio.Future):
        settled: Rendered = entry  # rendered already
        return settled
    if entry.done():
        done: Rendered = entry.result()
        return done
    return await asyncio.shield(entry)


async def rendered(
    ctx: Context, shape: Shape, item: T, convert: Callable[[T], object | None]
) -> Rendered:
    """The payload of item for this subscriber: shared when it can be, its own when not."""
    if not isinstance(item, SharedEvent):  # a viewer's own news (joined, left, read)
        return await _render(ctx.services, shape, item, convert, ctx.scope.viewer)
    event = item
    if not shape.analysis.per_viewer:
        done = event.rendered.get(shape.key)
        if isinstance(done, str):
            return done  # the common case: the feed rendered it before anyone asked
        payload = await _memoised(
            event, shape.key, lambda: _render(ctx.services, shape, item, convert, None)
        )
        if not isinstance(payload, _NeedsViewer):
            return payload
        shape.analysis.per_viewer = True
    scope = ctx.scope
    viewer_key = (shape.key, scope.viewer_id)
    # Kept only while in flight (one viewer's sockets asking at once share
    # it): a rendering per viewer per event would otherwise stay with every
    # event the feed keeps. The viewer's row is made (a live stream keeps
    # only its values) by the one subscriber that renders.
    return await _memoised(
        event,
        viewer_key,
        lambda: _render(ctx.services, shape, item, convert, scope.viewer),
        keep=False,
    )


@dataclass(slots=True)
class _Registered:
    shape: Shape
    convert: Callable[[Any], object | None]
    services: Services
    subscribers: int = 0


class Prerender:
    """Renders a feed's new events for the shapes its subscribers use, before they wake.

    Otherwise the first subscriber to wake renders, and every other one
    waits on that render: a wait of its own per subscriber per event.
    """

    def __init__(self) -> None:
        self._shapes: dict[int, dict[str, _Registered]] = {}

    def add(
        self,
        conversation_id: int,
        shape: Shape,
        convert: Callable[[Any], object | None],
        services: Services,
    ) -> None:
        shapes = self._shapes.setdefault(conversation_id, {})
        entry = shapes.get(shape.key)
        if entry is None:
            entry = shapes[shape.key] = _Registered(shape, convert, services)
        entry.subscribers += 1

    def remove(self, conversation_id: int, key: str) -> None:
        shapes = self._shapes.get(conversation_id, {})
        entry = shapes.get(key)
        if entry is not None:
            entry.subscribers -= 1
            if entry.subscribers <= 0:
                del shapes[key]
                if not shapes:
                    del self._shapes[conversation_id]

    async def __call__(self, events: list[SharedEvent]) -> None:
        shapes = self._shapes.get(events[0].conversation_id) if events else None
        if not shapes:
            return
        renders: list[asyncio.Future[Rendered]] = []
        for entry in list(shapes.values()):
            shape = entry.shape
            if shape.analysis.per_viewer:
                continue
            for event in events:
                if shape.key not in event.rendered:
                    render = _render(entry.services, shape, event, entry.convert, None)
                    renders.append(_start(event, shape.key, render, keep=True))
        # Waited for a moment only: a slow shape (one reading presence, say)
        # must not hold back the others; its subscribers wait on it in the
        # memo. A render that failed fails for its subscribers there too.
        if renders:
            await asyncio.wait(renders, timeout=PRERENDER_WAIT_SECONDS)


prerender = Prerender()


async def deliver(
    info: Info[Any, Any], items: AsyncIterator[T], convert: Callable[[T], object | None]
) -> AsyncGenerator[Any, None]:
    """A subscription's results: written straight to its socket when the handler said where.

    The stream then runs in a task of its own (``_pump``) from the start, and
    the operation's task waits only until it is live: an error of the opening
    checks (access, ``afterSeq``) is raised here, for Strawberry to report as
    before; once live, the handler adopts the stream's task and this ends,
    which frees Strawberry's state for the operation.
    """
    ctx: Context = info.context
    target = _target.get()
    if target is None:
        async with aclosing(items):  # type: ignore[type-var]  # our streams are generators
            async for item in items:
                if isinstance(item, SharedEvent):
                    scope = ctx.scope
                    scope.fresh_loaders()
                    viewer = scope.viewer
                    prime(scope.loaders, item, viewer.id if viewer is not None else None)
                converted = convert(item)
                if converted is not None:
                    yield converted
        return
    parent = asyncio.current_task()
    assert parent is not None  # (deliver runs in the operation's task)
    handoff = _Handoff(parent)
    pump = asyncio.create_task(
        _pump(ctx, Shape.of(info, target), items, convert, target.frames, handoff)
    )
    try:
        await handoff.went_live  # True: adopted; False: ended or gone before it was live
    except asyncio.CancelledError:
        pump.cancel()
        raise


class _Handoff:
    """Between a stream's task and the operation's, until the stream is live."""

    __slots__ = ("__weakref__", "frames", "parent", "scope", "went_live")

    def __init__(self, parent: asyncio.Task[Any]) -> None:
        self.parent: asyncio.Task[Any] | None = parent
        self.went_live: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.frames: Frames | None = None
        self.scope: OperationScope | None = None

    def on_live(self) -> None:
        """go_live's hook: adopted, the stream sheds what it no longer needs."""
        frames = self.frames
        if frames is None:
            return
        self.live(frames, asyncio.current_task())
        if self.adopted():
            if self.scope is not None:
                self.scope.shed()
            on_live.set(None)  # once is all

    def live(self, frames: Frames, task: asyncio.Task[Any] | None) -> None:
        parent, self.parent = self.parent, None
        if parent is None or task is None or self.went_live.done():
            return
        adopted = frames.adopter.adopt(frames.operation_id, parent, task)
        self.went_live.set_result(adopted)
        if not adopted:
            task.cancel()

    def adopted(self) -> bool:
        done = self.went_live
        return done.done() and not done.cancelled() and done.exception() is None and done.result()

    def ended_early(self, failure: Exception | None) -> bool:
        """The stream ended before it was live (the operation's task reports it)."""
        self.parent = None
        if self.went_live.done():
            return False
        if failure is not None:
            self.went_live.set_exception(failure)
        else:
            self.went_live.set_result(False)
        return True


async def _pump(
    ctx: Context,
    shape: Shape,
    items: AsyncIterator[T],
    convert: Callable[[T], object | None],
    frames: Frames,
    handoff: _Handoff,
) -> None:
    """A stream in a task of its own: each item's payload, rendered once for many where it
    can be, written to the socket; adopted by the handler once live (see deliver)."""
    this = asyncio.current_task()
    assert this is not None
    # Held for the stream's life (by this frame, through the handoff): the
    # context only names it weakly, and the operation's own task, which holds
    # it until then, ends once adopted.
    handoff.scope = ctx.scope
    handoff.frames = frames
    # Only this task's stream reports to it (the task runs in a copy of the
    # context), and weakly: every timer and task made meanwhile copies the
    # context (on SQLite a pool wait leaves a 60-second timer behind), and
    # must not keep the stream, its socket or itself.
    on_live.set(weakref.WeakMethod(handoff.on_live))
    _target.set(None)
    prerendered: set[int] = set()
    failure: Exception | None = None
    try:
        try:
            async with aclosing(items):  # type: ignore[type-var]  # our streams are generators
                while True:
                    try:
                        item = await anext(items)
                        if (
                            isinstance(item, SharedEvent)
                            and item.conversation_id not in prerendered
                        ):
                            prerendered.add(item.conversation_id)
                            prerender.add(item.conversation_id, shape, convert, ctx.services)
                        payload = await rendered(ctx, shape, item, convert)
                    except StopAsyncIteration:
                        break
                    except Exception as error:  # the stream's: reported to the client
                        failure = error
                        break
                    if not isinstance(payload, str):
                        continue
                    handoff.live(frames, this)
                    if not handoff.adopted():
                        return  # the operation was gone before its stream was live
                    try:
                        await frames.send(payload)
                    except Exception:  # the socket's: it is gone, and the handler ends us
                        return
                    stats.frames += 1
        finally:
            on_live.set(None)
            for conversation_id in prerendered:
                prerender.remove(conversation_id, shape.key)
            early = handoff.ended_early(failure)
        if early or not handoff.adopted():
            return
        try:
            if failure is not None:
                await _send_failure(ctx, shape, frames, failure)
        finally:
            with suppress(Exception):  # the socket may be gone meanwhile
                await frames.adopter.ended(frames.operation_id, this)
    except asyncio.CancelledError:
        if handoff.adopted():
            with suppress(Exception):  # the socket may be gone (its end cancels us too)
                await frames.adopter.stopped(frames.operation_id)
        raise


async def _send_failure(ctx: Context, shape: Shape, frames: Frames, failure: Exception) -> None:
    try:
        payload = await _render_error(ctx.services, shape, failure)
    except Exception:
        logger.exception("could not render the error that ended a stream", exc_info=failure)
        payload = RENDER_FAILED
    with suppress(Exception):  # the socket may be gone meanwhile
        await frames.send(payload)
