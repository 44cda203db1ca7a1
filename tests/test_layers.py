"""Imports point one way: a layer may import its own layer and the ones below it, never one above.

The layers, lowest first, are the package's top-level modules as docs/architecture.md draws them. A new top-level
module must be given a layer here, which is the moment to decide where it belongs.
"""

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "src" / "actorbatch"
ARCHITECTURE = Path(__file__).parent.parent / "docs" / "architecture.md"
LAYERS = [
    {"errors", "clock", "frozen"},  # plain values, the gateway to time and ids, and how value classes are made
    {"domain"},  # the pure core: aggregates, events, rules
    {"behaviours", "store"},  # sans-I/O decision objects; the event log
    {"node"},  # the node core: a server's steps, through declared ports
    {"projections", "runners", "examples"},  # read models over the log; how task bodies run
    {"actors"},  # the pykka shells of a batch server
    {"api", "maintenance", "embedded"},  # the Python API; retention and upkeep, and the maintenance job's bodies;
    # a server in the client's process
    {"web"},  # the web console, on the Python API
    {"cli", "__main__"},  # the command line
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def top(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def imports(path: Path) -> set[str]:
    """The actorbatch modules `path` imports, relative imports resolved."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("actorbatch.")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("actorbatch."):
            found.add(node.module)
    return found


def layer_of(package: Path, path: Path) -> str:
    relative = path.relative_to(package)
    return relative.parts[0].removesuffix(".py") if len(relative.parts) > 1 or path.stem != "__init__" else "__init__"


def upward_imports(package: Path) -> list[str]:
    """Every import in `package` of a module from a higher layer."""
    upward = []
    for path in sorted(package.rglob("*.py")):
        own, name = layer_of(package, path), path.relative_to(package)
        if own == "__init__":
            continue  # the package's front door re-exports the public API of every layer
        assert own in RANK, f"{name}: give the new module {own!r} a layer in {__name__}"
        for module in imports(path):
            target = top(module)
            assert target in RANK, f"{name} imports {module}, which has no layer"
            if RANK[target] > RANK[own]:
                upward.append(f"{name} ({own}) imports {module} ({target})")
    return upward


def test_every_module_imports_only_its_own_layer_and_below() -> None:
    assert upward_imports(PACKAGE) == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    (tmp_path / "domain").mkdir()
    (tmp_path / "domain" / "runs.py").write_text("from actorbatch.errors import Conflict\n"
                                                "from actorbatch.actors.server import BatchServer\n")
    (tmp_path / "cli.py").write_text("import actorbatch.domain.runs\n")
    assert upward_imports(tmp_path) == [
        "domain/runs.py (domain) imports actorbatch.actors.server (actors)"]


def drawn_layers(text: str) -> list[set[str]]:
    """The top-level modules of each row of the layer table in docs/architecture.md, top to bottom."""
    section = text.split("## The layers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[2] for line in section.splitlines() if line.startswith("| ") and "`" in line]
    return [{name.split("/")[0].removesuffix(".py") for name in re.findall(r"`([^`]+)`", row)} for row in rows]


def test_the_architecture_document_draws_the_layers_the_imports_keep() -> None:
    assert drawn_layers(ARCHITECTURE.read_text()) == LAYERS
