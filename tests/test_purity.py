"""The core is I/O-free and clock-free; only the loopback server in qqproto.testing touches sockets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "qqproto"
FORBIDDEN_MODULES = {"socket", "ssl", "asyncio", "trio", "anyio", "threading", "selectors", "concurrent", "time"}
ALLOWED_IO = {PACKAGE / "testing" / "serve.py", PACKAGE / "testing" / "serve_push.py"}


def core_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p not in ALLOWED_IO)


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_core_module_imports_no_io_and_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
            if node.module == "random":
                assert {a.name for a in node.names} <= {"Random"}, f"{path}: module-level random"
        else:
            names = []
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path}:{node.lineno} imports {name}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "random":
                assert node.func.attr == "Random", f"{path}:{node.lineno} calls random.{node.func.attr}"
            if isinstance(owner, ast.Name) and owner.id in ("datetime", "date"):
                assert node.func.attr not in ("now", "today", "utcnow"), f"{path}:{node.lineno} reads a clock"
