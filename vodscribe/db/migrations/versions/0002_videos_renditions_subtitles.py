"""videos, renditions, subtitles

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "videos",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("origin_url", sa.Text(), nullable=True),
        sa.Column("client_user_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("auto_transcribe_audio_language", sa.String(length=16), nullable=False),
        sa.Column("auto_translate_subtitles_language", sa.String(length=512), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("origin_size", sa.Integer(), nullable=True),
        sa.Column("origin_width", sa.Integer(), nullable=True),
        sa.Column("origin_height", sa.Integer(), nullable=True),
        sa.Column("origin_audio_channels", sa.Integer(), nullable=True),
        sa.Column("has_audio", sa.Boolean(), nullable=True),
        sa.Column("screenshot", sa.String(length=256), nullable=True),
        sa.Column("job_state", sa.String(length=16), nullable=False),
        sa.Column("job_attempts", sa.Integer(), nullable=False),
        sa.Column("job_worker", sa.String(length=200), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_videos_client_id"), ["client_id"], unique=False)

    op.create_table(
        "renditions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("bitrate", sa.Integer(), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("filename", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("renditions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_renditions_video_id"), ["video_id"], unique=False)

    op.create_table(
        "subtitles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("video_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("vtt", sa.Text(), nullable=False),
        sa.Column("ai_task_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["video_id"], ["videos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("subtitles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subtitles_video_id"), ["video_id"], unique=False)

    with op.batch_alter_table("ai_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("video_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("attach_subtitle", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(batch_op.f("ix_ai_tasks_video_id"), ["video_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_ai_tasks_video_id", "videos", ["video_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("ai_tasks", schema=None) as batch_op:
        batch_op.drop_constraint("fk_ai_tasks_video_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_ai_tasks_video_id"))
        batch_op.drop_column("attach_subtitle")
        batch_op.drop_column("video_id")

    with op.batch_alter_table("subtitles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subtitles_video_id"))

    op.drop_table("subtitles")
    with op.batch_alter_table("renditions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_renditions_video_id"))

    op.drop_table("renditions")
    with op.batch_alter_table("videos", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_videos_client_id"))

    op.drop_table("videos")
