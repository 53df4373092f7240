"""Arrows point down: bot/ wires, handlers/ read and render, services/ decide and write. A
service never imports bot/ nor talks to Telegram, migrations included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("services"), ids=lambda p: str(p.relative_to(ROOT)))
def test_services_import_neither_bot_nor_handlers_nor_aiogram(path: Path) -> None:
    upward = {
        name for name in _imports(path) if name.split(".")[0] in {"bot", "handlers", "aiogram"}
    }
    assert upward == set()


@pytest.mark.parametrize("path", _modules("handlers"), ids=lambda p: str(p.relative_to(ROOT)))
def test_handlers_do_not_import_the_wiring(path: Path) -> None:
    assert {name for name in _imports(path) if name.split(".")[0] == "bot"} == set()
