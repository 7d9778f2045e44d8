"""webhook_deliveries.sending_until: the lease of an attempt under way (per-client concurrency);
webhook_endpoints.secret long enough for a sealed secret (the reaper seals those kept in clear)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("sending_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.alter_column("secret", type_=sa.String(length=512), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("sending_until")
