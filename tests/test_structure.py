"""The code base's structure: no import cycles, small modules, the two packages kept apart,
thin entry points. Read from the source with ``ast``, so nothing is imported."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nengo_actions", "feature_extraction")
MAX_LINES = 500


def module_files():
    """``{dotted module name: path}`` of every module of the project's packages."""
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imports(name, path, modules):
    """``(imported module, line)`` for every import in ``path``, at any depth (function-local
    imports included). ``from P import n`` counts as importing ``P.n`` when that is a module."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append((sub if sub in modules else base, node.lineno))
    return found


def import_graph():
    modules = module_files()
    return {name: {m for m, _ in imports(name, path, modules) if m in modules and m != name}
            for name, path in modules.items()}


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_project_modules():
    graph = import_graph()
    assert len(graph) > 50 and graph["nengo_actions.experiment"]  # the scan sees the project
    assert cycles(graph) == []


def test_no_module_over_the_size_limit():
    long = {name: n for name, path in module_files().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize(
    "package, forbidden",
    [("feature_extraction", ("tensorflow", "keras", "keras_lmu", "keras_spiking", "nengo", "nengo_dl")),
     ("nengo_actions", ("torch", "torchvision"))],
)
def test_the_two_stacks_never_share_a_process(package, forbidden):
    """Feature extraction runs alone on a GPU machine without TensorFlow or Nengo, and the
    Nengo side never loads PyTorch: no module of ``package`` imports a ``forbidden`` one,
    itself or through the project modules it imports (at any depth, function-local too)."""
    modules = module_files()
    graph = import_graph()
    bad = []
    for name in (m for m in modules if m.split(".")[0] == package):
        seen, todo = {name}, [name]
        while todo:
            here = todo.pop()
            for m, line in imports(here, modules[here], modules):
                if m.split(".")[0] in forbidden:
                    bad.append(f"{name} -> {here}:{line} imports {m}")
            todo += [m for m in graph[here] - seen]
            seen |= graph[here]
    assert bad == []


def test_entry_points_do_not_edit_sys_path():
    bad = [str(p.relative_to(ROOT)) for folder in ("scripts", "benchmarks") for p in (ROOT / folder).rglob("*.py")
           if "sys.path.insert" in p.read_text(encoding="utf-8") or "sys.path.append" in p.read_text(encoding="utf-8")]
    assert bad == []
