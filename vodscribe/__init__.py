"""vodscribe: self-hosted, Gcore-compatible AI subtitles for video."""

__version__ = "0.1.0"
