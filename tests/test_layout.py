"""The house: imports run one way, common -> graphgen -> models -> configs -> experiment -> train.py / eval.py,
with no cycle, and the repository explains itself (no file cites a document outside it)."""

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first: a module may import its own layer and those before it, never one after it.
LAYERS = [["common"], ["graphgen"], ["models"], ["configs"], ["experiment"], ["train", "eval"]]
LAYER_OF = {top: rank for rank, tops in enumerate(LAYERS) for top in tops}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    files = [ROOT / "train.py", ROOT / "eval.py", *(p for top in LAYER_OF for p in (ROOT / top).glob("**/*.py"))]
    return {module_name(p): p for p in files if p.exists()}


def imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports anywhere in it (function-local imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found - {module_name(path)}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports(path, modules) for name, path in modules.items()}


def test_the_graph_sees_every_package():
    graph = import_graph()
    assert {name.split(".")[0] for name in graph} == set(LAYER_OF)
    assert "experiment.rundir" in graph["experiment.evaluate"]  # the parser finds imports: this check can fail


def test_imports_run_one_way():
    wrong = [
        f"{name} imports {target}"
        for name, targets in import_graph().items()
        for target in targets
        if LAYER_OF[target.split(".")[0]] > LAYER_OF[name.split(".")[0]] or {name, target} == {"train", "eval"}
    ]
    assert not wrong, wrong


def test_no_import_cycle():
    graph, state = import_graph(), {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            pytest.fail(f"import cycle: {' -> '.join([*trail[trail.index(name) :], name])}")
        state[name] = "open"
        for target in sorted(graph[name]):
            visit(target, [*trail, name])
        state[name] = "done"

    for name in sorted(graph):
        visit(name, [])


# Documents that live beside the repository, not in it (spelt in pieces so that this file does not cite them).
OUTSIDE = ("DESIGN" + ".md", "ANCHORS" + ".md", "shared" + "/")


def test_nothing_cites_a_document_outside_the_repository():
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    citing = [
        name
        for name in tracked
        if name.endswith((".py", ".md", ".toml")) and any(doc in (ROOT / name).read_text() for doc in OUTSIDE)
    ]
    assert not citing, citing


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every project module `start` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


# The evaluation reads stored models (experiment/stored.py); the trainer must not come with it.
TRAINER = {"experiment.fit", "experiment.phases", "experiment.pretrained", "experiment.optim"}


def test_the_evaluator_never_imports_the_trainer():
    graph = import_graph()
    assert "experiment.fit" in reachable(graph, "experiment.pretrained")  # the walk follows imports: can fail
    assert not reachable(graph, "experiment.evaluate") & TRAINER, reachable(graph, "experiment.evaluate") & TRAINER
