"""The package's rooms import downwards only (README "How it works", docs/design.md "Architecture").

Each top-level module or package of ``vodscribe`` is a room on a floor; a module may import its own
room or a room on a lower floor, never one beside or above it. A new room must be given a floor here,
which is the moment to decide where it belongs.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vodscribe"

FLOORS = {
    "cli": 7,
    "api": 6,
    "worker": 6,
    "services": 5,
    "speech": 4,
    "engines": 3,
    "queue": 3,
    "media": 2,
    "models": 2,
    "storage": 2,
    "schemas": 2,
    "keys": 2,
    "fsqueue": 2,
    "db": 1,
    "metrics": 1,
    "logs": 1,
    "config": 1,
    "languages": 1,
    "errors": 1,
    "atomic": 1,
}
#: What every room may take from the package's face (``vodscribe/__init__.py``).
FACE = {"__version__"}


def _modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if "versions" not in p.parts and p.parent != PACKAGE.parent
    )


def _room(path: Path) -> str | None:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return None if parts == ("__init__",) else parts[0]


def _imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "vodscribe":
                names = [f"vodscribe.{alias.name}" for alias in node.names if alias.name not in FACE]
            else:
                names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        rooms |= {name.split(".")[1] for name in names if name.startswith("vodscribe.")}
    return rooms


def test_every_room_has_a_floor() -> None:
    rooms = {_room(path) for path in _modules()} - {None}
    assert rooms - FLOORS.keys() == set(), "give the new room a floor in FLOORS"
    assert FLOORS.keys() - rooms == set(), "a room that is gone is still listed"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_go_down_only(path: Path) -> None:
    room = _room(path)
    if room is None:
        return
    upward = {other for other in _imported_rooms(path) if other != room and FLOORS[other] >= FLOORS[room]}
    assert not upward, f"{room} (floor {FLOORS[room]}) imports {sorted(upward)} on its floor or above"
