"""``python -m vodscribe.cli``."""

from vodscribe.cli.commands import main

main()
