"""The layering of DESIGN.md, held by reading every module's imports (AST):
no import cycle between modules, no import against the layer order, no
function-level import of `backend.*` outside `cli.py`, and a worker that
imports nothing above the job queue."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[1] / "backend"

# Low to high; a module takes the layer of the longest listed prefix.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("backend.settings",),
    ("backend.kit",),
    (
        "backend.tenants",
        "backend.users",
        "backend.roles",
        "backend.api_keys",
        "backend.auth",
        "backend.audit",
    ),
    ("backend.jobs",),
    ("backend.documents",),
    (
        "backend.cases",
        "backend.uploads",
        "backend.webhooks",
        "backend.events",
        "backend.admin",
        "backend.system",
    ),
    ("backend.marking", "backend.candidates", "backend.crawls", "backend.scans"),
    (
        "backend.plugins",
        "backend.worker",
        "backend.main",
        "backend.cli",
        "backend.__main__",
        "backend.db_models",
    ),
)
WORKER_MAY_IMPORT = ("backend.settings", "backend.kit", "backend.jobs", "backend.worker")


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    top_level: bool


def module_name(path: Path) -> str:
    parts = path.relative_to(BACKEND.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    if module == "backend":  # the package itself: its version
        return 0
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                best is None or len(prefix) > best[1]
            ):
                best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer: add its package to LAYERS"
    return best[0]


def imports(known: set[str]) -> Iterator[Import]:
    """Every import of a backend module by a backend module (outside
    `if TYPE_CHECKING:` blocks), resolved to the most specific known module."""
    for path in sorted(BACKEND.rglob("*.py")):
        source = module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(child)
            for node in tree.body
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for child in ast.walk(node)
        }
        top_level = {id(node) for node in tree.body}
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{alias.name}" for alias in node.names] + [base]
            else:
                continue
            for name in names:
                if name in known and name != source:
                    yield Import(source, name, node.lineno, id(node) in top_level)
                    break


def test_backend_imports_follow_the_layers() -> None:
    known = {module_name(path) for path in BACKEND.rglob("*.py")}
    found = list(imports(known))

    graph: dict[str, set[str]] = {module: set() for module in known}
    for edge in found:
        if not edge.source.startswith(edge.target + "."):  # a package's own __init__
            graph[edge.source].add(edge.target)
    cycle: list[str] = []
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        cycle = list(error.args[1])

    upward = sorted(
        f"{edge.source}:{edge.line} -> {edge.target}"
        for edge in found
        if layer(edge.target) > layer(edge.source)
    )
    late = sorted(
        f"{edge.source}:{edge.line} -> {edge.target}"
        for edge in found
        if not edge.top_level and edge.source != "backend.cli"
    )
    worker = sorted(
        f"{edge.source}:{edge.line} -> {edge.target}"
        for edge in found
        if edge.source.startswith("backend.worker")
        and not edge.target.startswith(WORKER_MAY_IMPORT)
    )
    print(
        f"import graph: {len(known)} modules, {sum(map(len, graph.values()))} imports, "
        f"{1 if cycle else 0} cycles, {len(upward)} upward, {len(late)} function-level"
    )
    assert not cycle, f"import cycle: {' -> '.join(cycle)}"
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)
    assert not late, "function-level imports of backend modules:\n" + "\n".join(late)
    assert not worker, "the worker imports above the job queue:\n" + "\n".join(worker)
