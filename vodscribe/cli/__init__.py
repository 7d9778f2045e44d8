"""Command line (``vodscribe ...``): the commands, and what only they use (model listing, the
upload client)."""

from vodscribe.cli.commands import main

__all__ = ["main"]
