"""one spelling per reaction: rewrite stored emoji keys as new ones are written

Reactions stored before keys were normalised (NFC, fully-qualified emoji)
would count apart from the same emoji added now and could not be removed
by either spelling. This rewrites every key with the rule the server
applies to new reactions, and keeps one row where a user's two spellings
now coincide. It imports that rule from the code, which is right while
the rule only ever maps a key to itself once normalised (idempotent);
should the rule change, give that change a migration of its own.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from resolvers.validation import reaction_key

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

reactions = sa.table(
    "reactions",
    sa.column("id", sa.Integer),
    sa.column("message_id", sa.Integer),
    sa.column("user_id", sa.Integer),
    sa.column("emoji", sa.String),
)


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            reactions.c.id, reactions.c.message_id, reactions.c.user_id, reactions.c.emoji
        ).order_by(reactions.c.id)
    ).all()
    # One row per (message, user, key): the one already spelled so if any,
    # else the oldest. The others go before any row is renamed, so that no
    # rename meets a row it would duplicate.
    groups: dict[tuple[int, int, str], list[tuple[int, str]]] = {}
    for row_id, message_id, user_id, emoji in rows:
        groups.setdefault((message_id, user_id, reaction_key(emoji)), []).append((row_id, emoji))
    renames: list[tuple[int, str]] = []
    for (_, _, key), spellings in groups.items():
        keep = next((s for s in spellings if s[1] == key), spellings[0])
        for row_id, _ in spellings:
            if row_id != keep[0]:
                connection.execute(sa.delete(reactions).where(reactions.c.id == row_id))
        if keep[1] != key:
            renames.append((keep[0], key))
    for row_id, key in renames:
        connection.execute(sa.update(reactions).where(reactions.c.id == row_id).values(emoji=key))


def downgrade() -> None:
    # The old spellings are not kept; the normalised keys are valid for old code too.
    pass
