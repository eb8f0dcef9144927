"""The project's import graph, read from the source with ``ast`` (nothing is imported or run).

Rules (README "Layout"; issue 14): no import circle among the project's modules; ``utils`` imports nothing else of
ours; serving and routing never reach the training code: nothing that ``routers``, ``serve``, ``calibrate``,
``candidates`` or ``cost_curves`` imports, directly or through other modules, is in ``trainers``; and no module
reads another module's private names (``module._name`` or ``from module import _name``).

Every import counts, those inside functions too (a lazy import hides a circle, it does not remove it). Importing
``a.b.c`` also runs the packages ``a`` and ``a.b``, so it counts as importing them, except from inside them
(a package's own modules import their siblings while it initialises, which is how packages work).
The checks run on ``src/`` and, to show that each can fail, on small trees that break one rule each.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
SERVING = ("routers", "serve", "calibrate", "candidates", "cost_curves")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def read_modules(root: Path) -> dict[str, tuple[Path, ast.Module]]:
    """{dotted module name: (file, syntax tree)} of every .py file under ``root``."""
    return {module_name(path, root): (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
            for path in sorted(root.rglob("*.py"))}


def resolve_from(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement of ``module`` reads from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package(path) else module.split(".")[:-1]
    base = package[:len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def with_parents(target: str, importer: str, modules: dict) -> set[str]:
    """``target`` and the packages above it that importing it runs (not those ``importer`` lies in)."""
    found = set()
    parts = target.split(".")
    for end in range(1, len(parts) + 1):
        name = ".".join(parts[:end])
        inside = importer == name or importer.startswith(name + ".")
        if name in modules and (end == len(parts) or not inside):
            found.add(name)
    return found


def import_graph(modules: dict) -> dict[str, set[str]]:
    """{module: the project modules it imports}."""
    graph = {}
    for module, (path, tree) in modules.items():
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    edges |= with_parents(alias.name, module, modules)
            elif isinstance(node, ast.ImportFrom):
                source = resolve_from(module, path, node)
                for alias in node.names:
                    submodule = f"{source}.{alias.name}"
                    edges |= with_parents(submodule if submodule in modules else source, module, modules)
        graph[module] = edges - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (a list of modules, the first repeated at the end), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """{module reachable from ``start``: the module that imports it on one path}."""
    parents, todo = {}, [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in parents and nxt != start:
                parents[nxt] = node
                todo.append(nxt)
    return parents


def path_to(parents: dict[str, str], start: str, end: str) -> list[str]:
    chain = [end]
    while chain[-1] != start:
        chain.append(parents[chain[-1]])
    return chain[::-1]


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def utils_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(utils module, the non-utils project module it imports)."""
    return sorted((module, target) for module, targets in graph.items() if in_package(module, "utils")
                  for target in targets if not in_package(target, "utils"))


def training_reached(graph: dict[str, set[str]]) -> list[list[str]]:
    """One import path per serving / routing module that reaches ``trainers``."""
    paths = []
    for module in sorted(graph):
        if any(in_package(module, root) for root in SERVING):
            parents = reachable(graph, module)
            hit = sorted(target for target in parents if in_package(target, "trainers"))
            if hit:
                paths.append(path_to(parents, module, hit[0]))
    return paths


def private_reads(modules: dict) -> list[str]:
    """``file:line name`` of each read of another project module's private name."""
    found = []
    for module, (path, tree) in modules.items():
        aliases = {}  # local name -> project module it stands for
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules:
                        aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                            alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom):
                source = resolve_from(module, path, node)
                for alias in node.names:
                    if f"{source}.{alias.name}" in modules:
                        aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
                    elif source in modules and source != module and alias.name.startswith("_") \
                            and not alias.name.startswith("__"):
                        found.append(f"{path.name}:{node.lineno} {source}.{alias.name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases \
                    and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and aliases[node.value.id] != module:
                found.append(f"{path.name}:{node.lineno} {aliases[node.value.id]}.{node.attr}")
    return sorted(found)


# ------------------------------------------------------------------------------------------------
# the project
# ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def project():
    modules = read_modules(SRC)
    return modules, import_graph(modules)


def test_the_reader_sees_the_known_imports(project):
    """Guards the reader itself: edges read off the source by hand."""
    modules, graph = project
    assert {"serve", "routers.pretrained", "routers.policy", "model.collators", "trainers.base", "utils.io"} <= set(
        modules)
    assert {"routers.pretrained", "routers.policy", "candidates", "utils.io", "routers"} <= graph["serve"]
    assert {"model.collators", "model.losses", "data.scaling", "model"} <= graph["trainers.base"]
    assert "rewards.reward_model" in graph["routers.reward"]  # a package's module, imported with `from ... import`
    # rewards/__init__ imports its modules inside functions, relatively: they count
    assert graph["rewards"] == {"rewards.reward_model", "rewards.unit_tests", "rewards.math_answer"}
    assert "utils.io" in graph["rewards.unit_tests"] and "rewards.sandbox" in graph["rewards.unit_tests"]


def test_no_import_circle(project):
    assert find_cycle(project[1]) is None


def test_utils_import_nothing_else_of_ours(project):
    assert utils_violations(project[1]) == []


def test_serving_and_routing_never_reach_the_trainers(project):
    _, graph = project
    assert training_reached(graph) == []
    assert "model" in reachable(graph, "serve")  # they do load the models (model.ROUTER_MODELS)


def test_no_private_name_of_another_module_is_read(project):
    assert private_reads(project[0]) == []


# ------------------------------------------------------------------------------------------------
# each check fails on a tree that breaks its rule
# ------------------------------------------------------------------------------------------------

def write_tree(root: Path, files: dict[str, str]) -> dict:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return read_modules(root)


def test_a_circle_hidden_in_a_function_is_found(tmp_path):
    modules = write_tree(tmp_path, {"a.py": "import b\n", "b.py": "def f():\n    from c import x\n",
                                    "c.py": "from a import y\n", "d.py": "import a\n"})
    assert find_cycle(import_graph(modules)) == ["a", "b", "c", "a"]


def test_a_package_importing_its_own_modules_is_no_circle_but_a_relative_loop_is(tmp_path):
    modules = write_tree(tmp_path, {"pkg/__init__.py": "from pkg.m import x\n", "pkg/m.py": "from pkg.n import y\n",
                                    "pkg/n.py": "from . import helpers\n", "pkg/helpers.py": ""})
    graph = import_graph(modules)
    assert graph["pkg.n"] == {"pkg.helpers"} and find_cycle(graph) is None
    (tmp_path / "pkg" / "helpers.py").write_text("from .m import x\n")
    # the search starts at "pkg" (sorted first), which leads to pkg.m first
    assert find_cycle(import_graph(read_modules(tmp_path))) == ["pkg.m", "pkg.n", "pkg.helpers", "pkg.m"]


def test_a_utility_that_imports_a_model_is_found(tmp_path):
    modules = write_tree(tmp_path, {"utils/__init__.py": "", "utils/io.py": "", "model/__init__.py": "",
                                    "model/backbones.py": "from utils.io import x\n",
                                    "utils/embeddings.py": "from utils.io import y\nfrom model.backbones import z\n"})
    assert utils_violations(import_graph(modules)) == [("utils.embeddings", "model"),
                                                       ("utils.embeddings", "model.backbones")]


def test_serving_that_reaches_the_trainers_through_another_module_is_found(tmp_path):
    modules = write_tree(tmp_path, {"serve.py": "import cost_curves\n", "cost_curves.py": "from routers import x\n",
                                    "routers/__init__.py": "", "routers/pretrained.py": "from trainers import STAGES\n",
                                    "trainers/__init__.py": "", "train.py": "import trainers\n"})
    graph = import_graph(modules)
    assert training_reached(graph) == [["routers.pretrained", "trainers"]]
    (tmp_path / "routers" / "__init__.py").write_text("from routers.pretrained import y\n")
    assert training_reached(import_graph(read_modules(tmp_path))) == [
        ["cost_curves", "routers", "routers.pretrained", "trainers"], ["routers", "routers.pretrained", "trainers"],
        ["routers.pretrained", "trainers"], ["serve", "cost_curves", "routers", "routers.pretrained", "trainers"]]


def test_reading_a_private_name_of_another_module_is_found(tmp_path):
    modules = write_tree(tmp_path, {"metrics.py": "def _scorer():\n    pass\nx = _scorer\n",
                                    "cost.py": "import metrics\nmetrics._scorer()\nmetrics.__name__\n",
                                    "report.py": "from metrics import _scorer as s\n",
                                    "other.py": "import os\nos._exit\n"})
    assert private_reads(modules) == ["cost.py:2 metrics._scorer", "report.py:1 metrics._scorer"]
