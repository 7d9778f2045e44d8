"""``GET /streaming/videos/{video_id}/upload``: where and with what token a TUS client uploads."""

from __future__ import annotations

from pydantic import BaseModel, Field

from vodscribe.schemas.videos import VideoOut


class UploadServer(BaseModel):
    id: int
    hostname: str = Field(description="host[:port]; the TUS endpoint is {scheme}://{hostname}/upload/")


class DirectUploadOut(BaseModel):
    """Gcore's ``DirectUploadParameters``."""

    servers: list[UploadServer]
    token: str = Field(description="Send as the TUS metadata `token`, with `video_id` and `client_id`")
    video: VideoOut
