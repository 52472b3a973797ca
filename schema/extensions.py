"""Schema extensions: a scope per operation, error codes with masking, and what happens
to a document before it runs (a token limit, one parse and one validation per document,
the checks of operationName, variables and Int literals)."""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import suppress
from typing import Any, TypeVar

from cachetools import LRUCache, cached
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    IntValueNode,
    OperationDefinitionNode,
    Visitor,
    parse,
    specified_rules,
    visit,
)
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.extensions.max_aliases import create_validator as alias_limit_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_limit_rule
from strawberry.schema.exceptions import CannotGetOperationTypeError
from strawberry.schema.schema import validate_document as strawberry_validate
from strawberry.types import ExecutionContext

from resolvers.context import Context
from resolvers.live.sharing import RenderContext
from resolvers.loaders import ViewerNeeded
from schema.errors import BadUserInput, ParleyError, no_such_operation, shown

logger = logging.getLogger("parley.errors")
V = TypeVar("V")

MASKED_MESSAGE = "Unexpected error."
# Parsed documents are kept (LRU) up to this many characters of document text
# in all: about 1,100 documents of the usual few hundred characters. A parsed
# document takes some 90 bytes per character of its text (20 KB for a 226-character
# history page), so the cache holds some 25 MB at most, however many distinct
# or large documents arrive; one longer than the whole budget is not kept.
DOCUMENT_TEXT_KEPT = 256 * 1024
MAX_TOKENS = 4000  # per document: parsing stops there (graphql-core's max_tokens)


class OpenOperationScope(SchemaExtension):
    """Fresh loaders and session per operation; the session is closed when it ends.

    This covers HTTP requests and every operation on a long-lived WebSocket alike.
    """

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if not isinstance(context, Context):
            yield
            return
        operation = context.begin_operation()
        try:
            yield
        finally:
            await context.end_operation(operation)


class Documents(SchemaExtension):
    """What happens to a document before it runs, in one extension.

    Parsing: at most ``MAX_TOKENS`` tokens, and one parse per document text
    (``parse_document``). Validation, in order: a document of several
    operations names one, the variables are text, the Int literals fit, and
    then GraphQL's validation with the depth and alias limits. When an
    earlier check has already reported a problem, that is all the client
    hears.

    One extension rather than one per concern: Strawberry makes every
    extension afresh for each operation and, for each of its four stages,
    looks up, wraps and enters every extension's hook (some 5 µs each on the
    benchmark machine; three fewer hooks were about 7% of a ``{ __typename }``
    request).
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = MAX_TOKENS
        if context.query and context.graphql_document is None:
            # A document that does not parse is left to Strawberry's own
            # parse, which reports it as any other error (Strawberry's
            # ParserCache would raise it out of this hook, without a code).
            with suppress(GraphQLError):
                context.graphql_document = parse_document(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        _require_operation_name(context)
        _refuse_lone_surrogates(context)
        _refuse_long_int_literals(context)
        _validate_cached(context)
        yield


def _require_operation_name(context: ExecutionContext) -> None:
    """A document of several operations must say which to run (GraphQL spec, 6.1).

    Without this, the first one would run, which is never what a client meant.
    """
    document = context.graphql_document
    # operation_name falls back to the first operation's name; only the
    # name the client sent tells whether it chose one.
    chosen = getattr(context, "_provided_operation_name", None)
    if document is not None and chosen is None:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if len(operations) > 1:
            # Set before validation runs, which then reports this alone.
            context.pre_execution_errors = [
                GraphQLError("Must provide operationName when the document has several operations.")
            ]


def _refuse_lone_surrogates(context: ExecutionContext) -> None:
    """Every string in the variables (keys too) must be Unicode text.

    JSON's ``"\\ud800"`` decodes to a lone surrogate, which is no Unicode
    character: UTF-8 cannot encode it, so argon2, hashlib and the database
    drivers all fail on it, and the failure would be masked as
    INTERNAL_SERVER_ERROR. Documents cannot carry one (graphql-core's lexer
    refuses it) but variables arrive already decoded, over HTTP and over
    both WebSocket protocols. This is the one place that refuses them, before
    any resolver runs, so no resolver needs to know.
    """
    if context.variables:
        error = _lone_surrogate_error(context.variables)
        if error is not None:
            # Set before validation runs, which then reports these alone.
            context.pre_execution_errors = [*(context.pre_execution_errors or []), error]


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _lone_surrogate_error(variables: dict[str, object]) -> BadUserInput | None:
    # Iterative: variables may nest as deep as the JSON parser allowed.
    stack: list[tuple[object, tuple[str | int, ...]]] = [(variables, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                return _not_text(path)
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                if _SURROGATE.search(key):
                    return _not_text((*path, key))
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, i)) for i, item in reversed(list(enumerate(value))))
    return None


def _not_text(path: tuple[str | int, ...]) -> BadUserInput:
    name, *rest = path
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{shown(part)}" for part in rest)
    message = (
        f"Variable '${shown(str(name))}'"
        + (f" at '{shown(str(name))}{where}'" if where else "")
        + " is not valid Unicode text: it holds a lone surrogate"
        " (a \\uD800-\\uDFFF escape without its other half)."
    )
    # The input field to blame, as other BAD_USER_INPUT errors name it.
    fields = [part for part in rest if isinstance(part, str) and not _SURROGATE.search(part)]
    return BadUserInput(message, field=fields[-1] if fields else None)


def _text_length(document: DocumentNode) -> int:
    return len(document.loc.source.body) if document.loc is not None else 1


@cached(LRUCache(maxsize=DOCUMENT_TEXT_KEPT, getsizeof=_text_length), info=True)
def parse_document(query: str, **options: Any) -> DocumentNode:
    return parse(query, **options)


MAX_DEPTH = 12
MAX_ALIASES = 30
# The rule classes are made once here, where Strawberry's QueryDepthLimiter and
# MaxAliasesLimiter would make two new classes for every operation (and a
# subscription keeps its operation's for as long as it lives).
VALIDATION_RULES: tuple[type[ASTValidationRule], ...] = (
    *specified_rules,
    depth_limit_rule(MAX_DEPTH, None, None),
    alias_limit_rule(MAX_ALIASES),
)


def _validate_cached(context: ExecutionContext) -> None:
    """Validation once per document: GraphQL's rules plus the depth and alias limits.

    Runs last among the checks: when an earlier one has already reported a
    problem, that is all the client hears. With Documents' parse, the same
    document text is the same DocumentNode, which is the key here.
    """
    document = context.graphql_document
    if document is not None and context.pre_execution_errors is None:
        graphql_schema = context.schema._schema  # noqa: SLF001 (as Strawberry's ValidationCache)
        context.pre_execution_errors = list(
            validate_document(graphql_schema, document, VALIDATION_RULES)
        )


class DerivedFromDocuments(MutableMapping[DocumentNode, V]):
    """What is derived from each document, kept as long as the document lives.

    A WeakKeyDictionary, but one that tells documents apart by identity: in
    graphql-core 3.3 a node is a frozen dataclass whose hash walks its whole
    tree (25 µs for the benchmark's history document), and a WeakKeyDictionary
    hashes its key at every lookup. With Documents' parse, the same text is the
    same document anyway.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[weakref.ref[DocumentNode], V]] = {}

    def __getitem__(self, document: DocumentNode) -> V:
        held, value = self._entries[id(document)]
        if held() is not document:
            raise KeyError(document)
        return value

    def __setitem__(self, document: DocumentNode, value: V) -> None:
        key = id(document)
        entries = self._entries

        def forget(dead: weakref.ref[DocumentNode]) -> None:
            # Only this document's entry: its id may be another's by now.
            entry = entries.get(key)
            if entry is not None and entry[0] is dead:
                del entries[key]

        entries[key] = (weakref.ref(document, forget), value)

    def __delitem__(self, document: DocumentNode) -> None:
        self[document]  # a KeyError unless the entry is this document's
        del self._entries[id(document)]

    def __iter__(self) -> Iterator[DocumentNode]:
        alive = (held() for held, _ in list(self._entries.values()))
        return (document for document in alive if document is not None)

    def __len__(self) -> int:
        return len(self._entries)


# What is derived from a document lives as long as the document does (kept by
# parse_document's cache, or in use): keyed weakly, by the document alone, as
# one schema and one set of rules (VALIDATION_RULES) ever come with it.
@cached(
    DerivedFromDocuments[tuple[GraphQLError, ...]](),
    key=lambda _schema, document, _rules: document,
    info=True,
)
def validate_document(
    graphql_schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
) -> tuple[GraphQLError, ...]:
    # Strawberry's own validation: the rules given, and those its schema
    # features need (Maybe, @oneOf), as it would run them.
    return tuple(strawberry_validate(graphql_schema, document, rules))


MAX_INT_DIGITS = 20  # far past 32 bits; beyond this, nothing can be an Int


def _refuse_long_int_literals(context: ExecutionContext) -> None:
    """An Int literal of more digits than any Int has is a validation error.

    graphql-core converts Int literals with int(), which refuses more than
    4300 digits with a ValueError that would be masked as INTERNAL_SERVER_ERROR.
    """
    document = context.graphql_document
    if document is not None and not context.pre_execution_errors:
        too_long = _long_int_literal(document, MAX_INT_DIGITS)
        if too_long is not None:
            context.pre_execution_errors = [
                GraphQLError(
                    f"Int cannot represent the {len(too_long.value)}-character literal "
                    f"{too_long.value[:12]}…: it is far outside 32 bits.",
                    nodes=[too_long],
                    extensions={"code": "GRAPHQL_VALIDATION_FAILED"},
                )
            ]


@cached(
    DerivedFromDocuments[IntValueNode | None](),
    key=lambda document, _max_digits: document,  # as validate_document
)
def _long_int_literal(document: DocumentNode, max_digits: int) -> IntValueNode | None:
    found: list[IntValueNode] = []

    class Finder(Visitor):
        def enter_int_value(self, node: IntValueNode, *_args: object) -> None:
            if len(node.value) > max_digits and not found:
                found.append(node)

    visit(document, Finder())
    return found[0] if found else None


class ErrorCodes(MaskErrors):
    """Give every error an ``extensions.code``; mask the unexpected ones.

    Strawberry's MaskErrors decides which errors to touch (here: every one
    that has no code yet) and does so for streamed results too; this only
    says what each becomes. Domain errors (``ParleyError``) go out as raised.
    Parse and validation errors keep their message (it is about the client's
    document) and get the codes Apollo clients know. Anything else is logged
    with the request id and replaced by a generic INTERNAL_SERVER_ERROR.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=_lacks_code, error_message=MASKED_MESSAGE)

    def _process_result(self, result: object) -> None:
        # MaskErrors first asks whether the result matches a runtime-checkable
        # Protocol, which on Python 3.11 walks the protocol's attributes: some
        # 11 µs for every operation. Most results have no errors to look at.
        if getattr(result, "errors", None):
            super()._process_result(result)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        context = self.execution_context.context
        extensions: dict[str, Any]
        if isinstance(original, ViewerNeeded) and isinstance(context, RenderContext):
            # Not a failure: an event rendered for everyone reached a field that
            # differs per viewer; the renderer starts over for each viewer.
            context.viewer_needed = True
            extensions = {"code": "INTERNAL_SERVER_ERROR"}
            message = self.error_message
        elif isinstance(original, ParleyError):
            extensions = original.extensions or {}
            message = original.message
        # Over a WebSocket, Strawberry hands these request errors over wrapped
        # in a GraphQLError; over HTTP they escape the schema to the router.
        elif isinstance(original, CannotGetOperationTypeError):
            return no_such_operation(original.operation_name)
        elif isinstance(original, MissingQueryError):
            extensions = {"code": "BAD_REQUEST"}
            message = "The request has no GraphQL document (query)."
        elif original is None or (error.path is None and isinstance(original, GraphQLError)):
            # No resolver ran: the document or its variables are at fault
            # (graphql-core keeps the coercion failure as original_error).
            extensions = {**(error.extensions or {}), "code": _client_error_code(error)}
            message = error.message
        else:
            request_id = getattr(context, "request_id", None)
            logger.error(
                "unexpected error (request %s) at %s",
                request_id,
                error.path,
                exc_info=(type(original), original, original.__traceback__),
            )
            extensions = {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id}
            message = self.error_message
        return GraphQLError(
            message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            extensions=extensions,
        )


def _lacks_code(error: GraphQLError) -> bool:
    return not (error.extensions and error.extensions.get("code"))


def _client_error_code(error: GraphQLError) -> str:
    message = error.message
    if message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if message.startswith("Variable '$") or "got invalid value" in message:
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"
