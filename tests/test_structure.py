"""The code base's structure: no import cycles, small modules, the two packages kept apart,
thin entry points. Read from the source with ``ast``, so nothing is imported."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nengo_actions", "feature_extraction")
MAX_LINES = 400


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


#: nengo_actions' layers, lowest first: a module imports only from its own layer and the
#: layers below it. A name is a root module or a package (``nengo_actions.<name>``).
LAYERS = [
    ("errors", "io", "compat", "store", "splits", "params"),  # what every layer shares
    ("config",),  # typed settings, the registry of models and data sets, paths
    ("cluster", "data"),  # one Ray session; event readers, frames and data sets
    ("clips",),  # clip data as arrays, streaming, clip scores
    ("neurons",),
    ("networks",),
    ("engine",),  # the only package that trains (TensorFlow)
    ("evaluation",),  # spiking runs, energy, metric names, the report
    ("deploy",),  # NIR, Loihi
    ("experiment",),  # one run, config to results
    ("train", "prepare_events", "crossval", "sweep", "gui"),  # commands
]
MAX_ROOT_MODULES = 12


def layer_of(module):
    parts = module.split(".")
    if parts[0] != "nengo_actions" or len(parts) == 1:
        return None  # feature_extraction, or the package's own __init__
    return parts[1]


def test_every_module_of_nengo_actions_has_a_layer():
    named = {name for group in LAYERS for name in group}
    assert {layer_of(m) for m in module_files()} - {None} == named


def test_each_layer_imports_only_from_those_below_it():
    level = {name: i for i, group in enumerate(LAYERS) for name in group}
    upward = sorted(
        f"{a} imports {b}"
        for a, deps in import_graph().items() if layer_of(a)
        for b in deps if layer_of(b) and level[layer_of(b)] > level[layer_of(a)]
    )
    assert upward == []


def test_imports_between_the_two_packages_go_one_way():
    """feature_extraction reads nengo_actions' configs and stores; nengo_actions never
    imports feature_extraction (it runs the extraction as a command)."""
    graph = import_graph()
    back = sorted(f"{a} imports {b}" for a, deps in graph.items() if a.startswith("nengo_actions")
                  for b in deps if b.startswith("feature_extraction"))
    assert back == []


def test_the_root_of_nengo_actions_holds_only_commands_and_shared_modules():
    root = sorted(p.stem for p in (ROOT / "nengo_actions").glob("*.py"))
    assert len(root) <= MAX_ROOT_MODULES, root


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


def classes():
    """``{(module, class name): ast.ClassDef}`` of every class of the project's packages."""
    return {(name, node.name): node for name, path in module_files().items()
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))) if isinstance(node, ast.ClassDef)}


def members(node):
    """The names a class defines: methods, class attributes and ``self.<name> =`` in its methods."""
    names = set()
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(item.name)
        elif isinstance(item, ast.Assign):
            names |= {t.id for t in item.targets if isinstance(t, ast.Name)}
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            names.add(item.target.id)
    for sub in ast.walk(node):
        if isinstance(sub, (ast.Assign, ast.AnnAssign)):
            for target in sub.targets if isinstance(sub, ast.Assign) else [sub.target]:
                for t in ast.walk(target):
                    if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                        names.add(t.attr)
    return names


def registered_trainers():
    """``{(module, class name)}`` of ``registry.TRAINERS`` (``"module:Class"`` values)."""
    tree = ast.parse((ROOT / "nengo_actions" / "config" / "registry.py").read_text(encoding="utf-8"))
    (node,) = [n for n in ast.walk(tree) if isinstance(n, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == "TRAINERS" for t in n.targets)]
    return {tuple(spec.split(":")) for spec in ast.literal_eval(node.value).values()}


def test_every_registered_trainer_has_every_member_of_the_trainer_interface():
    found = classes()
    interface = members(found[("nengo_actions.engine.trainer", "Trainer")])
    assert {"compile", "fit_epoch", "predict", "save_params", "load_params", "close"} <= interface
    trainers = registered_trainers()
    assert trainers == {("nengo_actions.engine.simulator", "Engine"), ("nengo_actions.engine.direct", "DirectEngine")}
    for key in sorted(trainers):
        assert sorted(interface - members(found[key])) == [], key


def test_no_project_class_inherits_a_trainer():
    """Trainers share code through plain functions (nengo_actions.engine.trainer), not through
    inheritance: none derives from a project class, and no project class derives from a
    trainer (a class with every member of the interface)."""
    found = classes()
    interface = members(found[("nengo_actions.engine.trainer", "Trainer")])
    trainers = {name for (module, name), node in found.items()
                if name != "Trainer" and interface <= members(node)} | {"Engine", "DirectEngine"}
    project = {name for _, name in found}
    bad = []
    for (module, name), node in found.items():
        bases = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases]
        if name in trainers and name != "Trainer" and [b for b in bases if b in project]:
            bad.append(f"{module}.{name} derives from {bases}")
        bad += [f"{module}.{name} derives from the trainer {b}" for b in bases if b in trainers]
    assert bad == []
