"""videos.uploaded_source, videos.upload_filename (direct upload through TUS)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("uploaded_source", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("upload_filename", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("upload_filename")
        batch.drop_column("uploaded_source")
