"""The parsed-document cache stays bounded by size, whatever documents arrive."""

from __future__ import annotations

import gc

from schema import extensions
from schema.schema import schema


def kept() -> int:
    """Characters of document text the parse cache holds now."""
    return int(extensions.parse_document.cache_info().currsize)


async def test_many_distinct_documents_stay_within_the_budget() -> None:
    # when documents of 2,000 characters arrive, three times the budget of them
    padding = " " * 2000
    count = 3 * extensions.DOCUMENT_TEXT_KEPT // 2000
    for i in range(count):
        result = await schema.execute(f"query Q{i} {{ __typename }}{padding}")
        assert result.data == {"__typename": "Query"}
    # then the cache holds no more text than its budget
    assert extensions.DOCUMENT_TEXT_KEPT - 2100 < kept() <= extensions.DOCUMENT_TEXT_KEPT
    # and what was derived from the documents it dropped went with them
    gc.collect()
    parsed = kept() // 2000
    assert extensions.validate_document.cache_info().currsize <= parsed + 1
    assert len(extensions._long_int_literal.cache) <= parsed + 1  # noqa: SLF001 (its cache)


async def test_a_document_larger_than_the_budget_is_not_kept() -> None:
    document = "query Huge { __typename }" + " " * extensions.DOCUMENT_TEXT_KEPT
    before = kept()
    for _ in range(2):
        assert (await schema.execute(document)).data == {"__typename": "Query"}
    assert kept() <= before
    assert all(
        len(key[0]) < extensions.DOCUMENT_TEXT_KEPT for key in extensions.parse_document.cache
    )
