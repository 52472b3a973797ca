"""Cursor paging arguments shared by every connection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from resolvers.validation import MAX_PAGE
from schema.errors import BadUserInput

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a connection: (cursor, row) pairs, oldest or first first."""

    edges: list[tuple[str, T]]
    has_next_page: bool
    has_previous_page: bool
    total_count: int | None = None


def forward_page(
    rows: list[T], *, limit: int, after_given: bool, cursor: Callable[[T], str]
) -> Page[T]:
    """Build a forward page from ``limit + 1`` rows read after the ``after`` cursor."""
    return Page(
        edges=[(cursor(row), row) for row in rows[:limit]],
        has_next_page=len(rows) > limit,
        has_previous_page=after_given,
    )


def forward_limit(first: int | None) -> int:
    """The page size of a forward-only connection (``first``/``after``)."""
    if first is None:
        return 20
    if first < 0 or first > MAX_PAGE:
        raise BadUserInput(f"first must be between 0 and {MAX_PAGE}.", field="first")
    return first


@dataclass(frozen=True, slots=True)
class Window:
    """Which end of a two-way connection to read from, and how much."""

    limit: int
    from_end: bool  # True for last/before: read backwards from the newest


def two_way_window(
    *, first: int | None, after: str | None, last: int | None, before: str | None, default: int = 50
) -> Window:
    if first is not None and last is not None:
        raise BadUserInput("Pass first or last, not both.")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise BadUserInput(f"{name} must be between 0 and {MAX_PAGE}.", field=name)
    if first is not None:
        return Window(limit=first, from_end=False)
    if last is not None:
        return Window(limit=last, from_end=True)
    # No size given: page forwards from `after`, otherwise read the newest.
    return Window(limit=default, from_end=after is None or before is not None)
