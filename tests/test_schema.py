"""The committed schema.graphql is current and keeps the public contract.

tests/contract.graphql is the published contract: the schema clients may
rely on. The served schema must stay a superset of it; changing the file
to allow a breaking change is a deliberate, reviewed edit.
"""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema, find_breaking_changes

from main import SCHEMA_FILE, schema_sdl

CONTRACT = Path(__file__).resolve().parent / "contract.graphql"


def test_committed_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema_sdl(), "run `python main.py schema` and commit"


def test_served_schema_keeps_the_contract() -> None:
    # given
    contract = build_schema(CONTRACT.read_text())
    # when
    served = build_schema(schema_sdl())
    # then
    changes = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(contract, served)]
    assert changes == []
