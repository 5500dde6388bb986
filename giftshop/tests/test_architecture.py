"""The house's floor plan, checked: the import graph between the project's packages and modules (imports inside
functions and under TYPE_CHECKING included) has no cycle, and every arrow points down the layer order that the
README's "Architecture" section draws. Walks the source with `ast`; imports nothing it checks."""

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The layers, top to bottom. A module may import modules of its own layer and of the layers below it.
# `giftshop` is two layers: its wiring (settings, the URLconfs, the Celery app, the servers' entry points)
# routes to the apps; the rest of it is the shared plumbing below every app.
WIRING = {
    "giftshop",
    "giftshop.settings",
    "giftshop.urls",
    "giftshop.mediastore_urls",
    "giftshop.merchant_urls",
    "giftshop.celery",
    "giftshop.wsgi",
    "giftshop.asgi",
}
LAYERS = ["wiring", "billing", "gifts", "accounts", "offers", "emails", "plumbing"]

# The one allowed kind of module cycle: an app's services enqueue its tasks and its tasks call its services.
ALLOWED_CYCLE_PAIRS = {("services", "tasks")}


def layer_of(module):
    top = module.split(".")[0]
    if top == "giftshop":
        return "wiring" if module in WIRING else "plumbing"
    return top


def _source_modules():
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] not in {layer.split(".")[0] for layer in LAYERS} | {"giftshop"}:
            continue
        if "tests" in parts or "migrations" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


MODULES = _source_modules()


def _target(module, node):
    """The project modules an import statement names (the module itself for `from pkg import module`)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}".strip(".")
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module:
            yield name


def _in_app_ready(module, target, function):
    """Django's documented way to connect an app's signal receivers: its AppConfig.ready() imports them, once the
    app registry is ready (a module-level import would load models too early). Not a dodged cycle."""
    return module.endswith(".apps") and function == "ready" and target.split(".")[0] == module.split(".")[0]


@cache
def imports():
    """{module: {imported module: [(line, names imported, inside a function?)]}}"""
    graph = defaultdict(lambda: defaultdict(list))
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        functions = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]
        enclosing = {id(inner): fn.name for fn in functions for inner in ast.walk(fn) if inner is not fn}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [alias.name for alias in node.names]
                function = enclosing.get(id(node))
                for target in _target(module, node):
                    inside = node.col_offset > 0 and not _in_app_ready(module, target, function)
                    graph[module][target].append((node.lineno, names, inside))
    return graph


def _cycles(edges):
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_it_finds_the_project_modules():
    assert {"gifts.models", "billing.services", "emails.models", "giftshop.settings", "giftshop.mediastore"} <= set(
        MODULES
    )


def test_every_arrow_between_layers_points_down():
    rank = {layer: i for i, layer in enumerate(LAYERS)}
    upward = [
        f"{module}:{line} imports {target} ({layer_of(module)} -> {layer_of(target)})"
        for module, targets in imports().items()
        for target, uses in targets.items()
        for line, _names, _inside in uses
        if rank[layer_of(target)] < rank[layer_of(module)]
    ]
    assert upward == []


def test_the_layers_have_no_cycle():
    edges = defaultdict(set)
    for module, targets in imports().items():
        for target in targets:
            if layer_of(module) != layer_of(target):
                edges[layer_of(module)].add(layer_of(target))
    assert _cycles(edges) == []


def test_modules_have_no_cycle_but_an_apps_services_and_tasks():
    edges = defaultdict(set)
    for module, targets in imports().items():
        for target in targets:
            same_app = module.rpartition(".")[0] == target.rpartition(".")[0]
            pair = tuple(sorted((module.rpartition(".")[2], target.rpartition(".")[2])))
            if not (same_app and pair in ALLOWED_CYCLE_PAIRS):
                edges[module].add(target)
    assert _cycles(edges) == []


def test_no_module_imports_another_modules_private_names():
    private = [
        f"{module}:{line} imports {name} from {target}"
        for module, targets in imports().items()
        for target, uses in targets.items()
        for line, names, _inside in uses
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert private == []


def test_no_project_import_hides_inside_a_function():
    # An import inside a function is how a cycle hides; with the arrows pointing one way none is needed.
    hidden = [
        f"{module}:{line} imports {target} inside a function"
        for module, targets in imports().items()
        for target, uses in targets.items()
        for line, _names, inside in uses
        if inside
    ]
    assert hidden == []


def test_every_models_and_services_module_explains_itself():
    undocumented = [
        module
        for module, path in MODULES.items()
        if module.rpartition(".")[2] in {"models", "services"} and not ast.get_docstring(ast.parse(path.read_text()))
    ]
    assert undocumented == []
