"""Architecture rules, checked on the source: the import graph of the ``qchunk`` subpackages.

The graph is read from the AST of every module (imports inside functions count: a lazy import is still a
dependency). A *unit* is a direct child of ``qchunk``: a subpackage (``qchunk.data``) or a top-level
module (``qchunk.tasks``, ``qchunk.cli``). One function per rule.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

import qchunk

SRC = Path(qchunk.__file__).resolve().parent

#: Import cycles allowed among the units (none: ``qchunk eval`` and ``analyze trajectories``, which read runs,
#: live above training in ``qchunk.evaluation.checkpoint_eval`` and ``qchunk.plotting``).
KNOWN_CYCLES: set[frozenset[str]] = set()
#: Modules that are a unit of their own: the checkpoint evaluator behind ``qchunk eval`` lives with the
#: evaluation code it drives, but reads run directories, so it sits above training (which evaluates).
OWN_UNITS = {"qchunk.evaluation.checkpoint_eval": "evaluation.checkpoint_eval"}


def _module_name(path: Path) -> list[str]:
    parts = ["qchunk", *path.relative_to(SRC).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def _imported_modules(path: Path) -> list[str]:
    """Absolute names of the modules ``path`` imports (relative imports resolved)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module)
    return names


def _unit(module: str) -> str:
    """The unit of a module name: ``qchunk.data.check`` -> ``data`` (see :data:`OWN_UNITS`)."""
    for own, unit in OWN_UNITS.items():
        if module == own or module.startswith(own + "."):
            return unit
    return module.split(".")[1]


@functools.cache
def unit_graph() -> dict[str, frozenset[str]]:
    """``unit -> units it imports`` over every module of ``qchunk`` (self-imports left out)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        if len(name) < 2:  # qchunk/__init__.py
            continue
        unit = _unit(".".join(name))
        edges[unit]
        for imported in _imported_modules(path):
            parts = imported.split(".")
            if parts[0] == "qchunk" and len(parts) > 1 and _unit(imported) != unit:
                edges[unit].add(_unit(imported))
    return {k: frozenset(v) for k, v in edges.items()}


@functools.cache
def module_graph() -> dict[str, frozenset[str]]:
    """``module -> qchunk modules it imports`` (a package is its ``__init__``; a name imported from a package
    counts as that package)."""
    paths = {".".join(_module_name(p)): p for p in SRC.rglob("*.py")}
    return {name: frozenset(m for m in _imported_modules(path) if m in paths and m != name)
            for name, path in paths.items()}


def cycles(graph: dict[str, frozenset[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one unit (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_reader_sees_real_edges():
    graph = unit_graph()
    assert {"data", "envs", "tasks", "training", "agents"} <= set(graph)
    assert "tasks" in graph["data"] and "tasks" in graph["envs"]  # both read the task table
    assert "envs" in graph["datagen"]  # a lazy import inside a function counts
    assert cycles({"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset({"a"})}) \
        == {frozenset({"a", "b", "c"})}


def test_data_and_envs_do_not_import_each_other():
    graph = unit_graph()
    assert "envs" not in graph["data"], "qchunk.data imports qchunk.envs; share what both need via qchunk.tasks"
    assert "data" not in graph["envs"], "qchunk.envs imports qchunk.data; share what both need via qchunk.tasks"


def test_tasks_is_the_ground_floor():
    assert unit_graph()["tasks"] <= {"errors"}
    third_party = {m.split(".")[0] for path in (SRC / "tasks").glob("*.py") for m in _imported_modules(path)}
    third_party -= {"qchunk", "__future__"}
    # gymnasium and minari are imported lazily, only for the open families gym:<id> and minari:<id>
    assert third_party <= {"functools", "importlib", "json", "os", "re", "dataclasses", "pathlib", "typing",
                           "numpy", "collections", "gymnasium", "minari"}


def test_no_import_cycles_among_subpackages():
    found = cycles(unit_graph())
    assert found == KNOWN_CYCLES, (f"import cycles among qchunk subpackages: {sorted(map(sorted, found))}; "
                                   f"expected only {sorted(map(sorted, KNOWN_CYCLES))} (update KNOWN_CYCLES when "
                                   "one is removed)")


def test_no_import_cycles_among_modules():
    """Within a subpackage too, no module imports (even lazily) one that imports it back."""
    found = cycles(module_graph())
    assert not found, f"import cycles among qchunk modules: {sorted(map(sorted, found))}"


def test_no_module_is_named_like_something_it_is_not():
    """A reader of an RL codebase expects ``replay`` to be a buffer: the checkpoint evaluator is not there."""
    assert not (SRC / "replay.py").exists()
    assert (SRC / "evaluation" / "checkpoint_eval.py").exists()


def test_the_sweep_is_split_by_concern():
    """``qchunk sweep``'s grid, Ray execution, status table and cancel relay are files of at most 300 lines."""
    parts = ("sweep", "sweep_plan", "settings_on_disk", "manifest", "status_table", "ray_task", "ray_session")
    sizes = {p: len((SRC / "experiments" / f"{p}.py").read_text().splitlines()) for p in parts}
    assert max(sizes.values()) <= 300, sizes


def test_task_names_are_parsed_in_one_place():
    """``qchunk.tasks.get_task`` is the only parser of task names: nothing else defines a parser, compiles a
    pattern of single-task names or calls the old ``parse_task``."""
    offenders = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        if rel.startswith("tasks/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            if isinstance(node, ast.FunctionDef) and node.name in ("get_task", "parse_task", "as_task"):
                offenders.append(f"{rel}: defines {node.name}")
            elif isinstance(node, ast.Name | ast.Attribute) and getattr(node, "id", getattr(node, "attr", "")) \
                    == "parse_task":
                offenders.append(f"{rel}: uses parse_task")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "singletask" in node.value \
                    and any(c in node.value for c in ("(?", "\\d", "^", "$")):
                offenders.append(f"{rel}: a pattern of task names {node.value!r}")
    assert not offenders, offenders


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in SRC.rglob("*.py"):
        here = ".".join(_module_name(path))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("qchunk") \
                    and node.module != here:
                offenders += [f"{here} imports {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert not offenders, offenders


def test_training_functions_and_classes_are_small():
    """In ``qchunk.training`` no function is longer than 60 lines and no class longer than 200."""
    too_long = []
    for path in sorted((SRC / "training").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            limit = {ast.FunctionDef: 60, ast.AsyncFunctionDef: 60, ast.ClassDef: 200}.get(type(node))
            if limit and node.end_lineno - node.lineno + 1 > limit:
                too_long.append(f"{path.name}:{node.name} has {node.end_lineno - node.lineno + 1} lines (> {limit})")
    assert not too_long, too_long


def test_the_run_directory_layout_is_named_in_one_module():
    """Only ``qchunk.training.run_dir`` spells the run directory's file names."""
    names = ("config.json", "eval.csv", "train.csv", "result.json", "online_states.npz")
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.relative_to(SRC).as_posix() == "training/run_dir.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} spells {node.value!r}")
    assert not offenders, offenders
