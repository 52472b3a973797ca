"""room for casefolded names and titles: casefold() may triple a character

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:26:33.153529
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column(
            "title_key",
            existing_type=sa.VARCHAR(length=100),
            type_=sa.String(length=300),
            existing_nullable=True,
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "display_name_key",
            existing_type=sa.VARCHAR(length=64),
            type_=sa.String(length=192),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column(
            "display_name_key",
            existing_type=sa.String(length=192),
            type_=sa.VARCHAR(length=64),
            existing_nullable=False,
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.alter_column(
            "title_key",
            existing_type=sa.String(length=300),
            type_=sa.VARCHAR(length=100),
            existing_nullable=True,
        )
