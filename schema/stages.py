"""Strawberry's extension runner, with each stage's hooks found once per extension class.

For every operation Strawberry builds four stage context managers (operation,
parsing, validation, execution), and each one asks every extension for its
hook: ``getattr`` on the class, ``inspect`` to tell a generator from an
async generator, and a ``contextlib`` decorator made afresh (with
``functools.update_wrapper``) around the bound method. The answer depends on
the extension's class alone, so here it is worked out once per class and
stage; what runs for each operation is the same context managers, entered
and left in the same order through an exit stack, as Strawberry's.

A stage with no hooks at all (execution, with Parley's extensions) costs
nothing. A hook that is neither kind of generator (Strawberry also accepts a
plain function or coroutine function) sends its stage to Strawberry's own
context manager, which handles every form.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from functools import cache
from types import TracebackType
from typing import Any, ClassVar

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext
from strawberry.utils.await_maybe import await_maybe

# (the hook made into a context manager factory, taking the extension; async?)
Hook = tuple[Callable[[SchemaExtension], Any], bool]


class _Unusual(Exception):
    """A hook this module leaves to Strawberry."""


def _hook(extension_class: type[SchemaExtension], name: str) -> Hook | None:
    function = getattr(extension_class, name)
    if function is getattr(SchemaExtension, name):
        return None
    if inspect.isgeneratorfunction(function):
        return contextlib.contextmanager(function), False
    if inspect.isasyncgenfunction(function):
        return contextlib.asynccontextmanager(function), True
    raise _Unusual(name)


@cache
def _hooks(classes: tuple[type[SchemaExtension], ...], name: str) -> tuple[tuple[int, Hook], ...]:
    """Each extension's hook for the stage, by its place in the list; _Unusual if any is odd."""
    found = ((index, _hook(cls, name)) for index, cls in enumerate(classes))
    return tuple((index, hook) for index, hook in found if hook is not None)


class _Stage:
    """One stage's hooks, entered in order and left in reverse, as Strawberry's."""

    __slots__ = ("_entered", "_hooks", "_name")

    def __init__(self, name: str, hooks: list[tuple[SchemaExtension, Hook]]) -> None:
        self._name = name
        self._hooks = hooks
        self._entered: contextlib.AsyncExitStack | contextlib.ExitStack | None = None

    async def __aenter__(self) -> None:
        if not self._hooks:
            return
        stack = self._entered = contextlib.AsyncExitStack()
        for extension, (factory, is_async) in self._hooks:
            if is_async:
                await stack.enter_async_context(factory(extension))
            else:
                stack.enter_context(factory(extension))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        stack = self._entered
        if stack is not None:
            assert isinstance(stack, contextlib.AsyncExitStack)
            # As Strawberry's: a hook that swallows the exception does not
            # stop it here (its stage's exception always carries on).
            await stack.__aexit__(exc_type, exc_val, exc_tb)

    def __enter__(self) -> None:
        if not self._hooks:
            return
        stack = self._entered = contextlib.ExitStack()
        for extension, (factory, is_async) in self._hooks:
            if is_async:
                # Strawberry's message for the same mistake.
                raise RuntimeError(
                    f"SchemaExtension hook {extension}.{self._name} "
                    "failed to complete synchronously."
                )
            stack.enter_context(factory(extension))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        stack = self._entered
        if stack is not None:
            assert isinstance(stack, contextlib.ExitStack)
            stack.__exit__(exc_type, exc_val, exc_tb)  # as __aexit__


class ExtensionsRunner(SchemaExtensionsRunner):
    """SchemaExtensionsRunner, its stages' hooks looked up once per extension class."""

    _STRAWBERRY: ClassVar[dict[str, type[ExtensionContextManagerBase]]] = {
        "on_operation": OperationContextManager,
        "on_parse": ParsingContextManager,
        "on_validate": ValidationContextManager,
        "on_execute": ExecutingContextManager,
    }

    def __init__(
        self,
        execution_context: ExecutionContext,
        extensions: list[SchemaExtension] | None = None,
    ) -> None:
        super().__init__(execution_context, extensions)
        self._classes = tuple(type(extension) for extension in self.extensions)

    def _stage(self, name: str) -> Any:
        try:
            hooks = _hooks(self._classes, name)
        except _Unusual:
            return self._STRAWBERRY[name](self.extensions)
        extensions = self.extensions
        return _Stage(name, [(extensions[index], hook) for index, hook in hooks])

    def operation(self) -> Any:
        return self._stage("on_operation")

    def parsing(self) -> Any:
        return self._stage("on_parse")

    def validation(self) -> Any:
        return self._stage("on_validate")

    def executing(self) -> Any:
        return self._stage("on_execute")

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        # As Strawberry's, without calling the get_results no extension overrides.
        data: dict[str, Any] = {}
        for extension in self.extensions:
            if type(extension).get_results is not SchemaExtension.get_results:
                data.update(await await_maybe(extension.get_results()))
        data.update(ctx.extensions_results)
        return data
