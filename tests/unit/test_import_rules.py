"""Import rules: the node's packages as docs/architecture.md allows; iqgate never the testkit."""

from __future__ import annotations

import ast
from pathlib import Path

import iqgate

NODE = Path(iqgate.__file__).parent / "node"

ALLOWED: dict[str, set[str]] = {
    "app": {"ingest", "pipeline", "delivery", "ops", "store", "console"},
    "ingest": {"store", "ops"},
    "pipeline": {"outputs", "ingest", "store", "ops"},
    "outputs": {"store", "ops"},
    "delivery": {"store", "ops"},
    "ops": {"store"},
    "store": set(),
    "console": {"store", "ops", "outputs"},
}
"""For each part of ``iqgate.node``, the other parts it may import (docs/architecture.md)."""


def _imported_modules(source: Path) -> list[str]:
    modules: list[str] = []
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
    return modules


def _part_of(source: Path) -> str:
    relative = source.relative_to(NODE).parts
    return relative[0] if len(relative) > 1 else relative[0].removesuffix(".py")


def test_every_node_module_belongs_to_a_known_part() -> None:
    parts = {_part_of(f) for f in NODE.rglob("*.py")} - {"__init__"}
    assert parts == set(ALLOWED)


def test_node_parts_import_only_what_the_architecture_allows() -> None:
    broken = []
    for source in sorted(NODE.rglob("*.py")):
        part = _part_of(source)
        for module in _imported_modules(source):
            pieces = module.split(".")
            if pieces[:2] == ["iqgate", "node"] and len(pieces) > 2:
                target = pieces[2]
                if target != part and target not in ALLOWED.get(part, set()):
                    broken.append(f"{source.relative_to(NODE)} imports {module}")
            elif pieces[:2] in (["iqgate", "study"], ["iqgate", "cli"]):
                broken.append(f"{source.relative_to(NODE)} imports {module}")
    assert not broken, "\n".join(broken)


def test_library_code_outside_the_node_never_imports_it() -> None:
    package = NODE.parent
    offenders = [
        str(source.relative_to(package))
        for source in package.rglob("*.py")
        if NODE not in source.parents
        and source.name != "cli.py"
        and any(m.startswith("iqgate.node") for m in _imported_modules(source))
    ]
    assert not offenders


def test_nothing_in_iqgate_imports_the_testkit() -> None:
    package = NODE.parent
    offenders = [
        str(source.relative_to(package))
        for source in package.rglob("*.py")
        if any(m.split(".")[0] == "iqgate_testkit" for m in _imported_modules(source))
    ]
    assert not offenders
