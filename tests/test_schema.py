"""The committed schema.graphql is current and keeps the public contract."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema, find_breaking_changes

from main import SCHEMA_FILE, schema_sdl

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract" / "schema.graphql"


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
