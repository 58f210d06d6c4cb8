"""The package's layering (docs/design.md): no import cycles between vawgan modules,
counting imports inside functions too; no library module imports a command module; no
library module parses arguments or prints."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "vawgan"


def _module_name(path: Path, pkg: Path = PKG) -> str:
    rel = path.relative_to(pkg.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, pkg: Path = PKG) -> set:
    """vawgan modules imported anywhere in ``path`` (module level or inside functions)."""
    name = _module_name(path, pkg)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "vawgan"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "vawgan":
                continue
            for a in node.names:  # "from . import metrics" names a module
                sub = f"{mod}.{a.name}"
                out.add(sub if (pkg.parent / (sub.replace(".", "/") + ".py")).exists()
                        or (pkg.parent / sub.replace(".", "/")).is_dir() else mod)
    out.discard(name)
    return out


def _graph() -> dict:
    mods = {_module_name(p): p for p in PKG.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in mods} for m, p in mods.items()}


def test_no_import_cycles():
    graph = _graph()
    assert "vawgan.bundle" in graph and "vawgan.model" in graph
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if n == "vawgan":  # the package __init__ (version only) is a leaf
                continue
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)


def test_the_import_reader_sees_every_form(tmp_path):
    pkg = tmp_path / "vawgan"
    (pkg / "sub").mkdir(parents=True)
    for f in ("__init__.py", "a.py", "b.py", "c.py", "sub/__init__.py", "sub/d.py"):
        (pkg / f).write_text("")
    (pkg / "sub" / "d.py").write_text(
        "import numpy\nimport vawgan.a\nfrom .. import b\n\n\ndef f():\n"
        "    from ..c import thing\n    from . import e\n")
    assert _imports(pkg / "sub" / "d.py", pkg) == {"vawgan.a", "vawgan.b", "vawgan.c",
                                                   "vawgan.sub"}


def _library_modules():
    return [p for p in PKG.rglob("*.py")
            if "commands" not in p.relative_to(PKG).parts and p.name not in ("cli.py", "__main__.py")]


def test_library_modules_import_no_command_module():
    offenders = {_module_name(p): sorted(i for i in _imports(p) if i.startswith("vawgan.commands")
                                         or i == "vawgan.cli")
                 for p in _library_modules()}
    assert {m: v for m, v in offenders.items() if v} == {}


def test_library_modules_neither_print_nor_parse_arguments():
    bad = []
    for p in _library_modules():
        tree = ast.parse(p.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                    and node.func.id == "print":
                bad.append(f"{p.name}:{node.lineno} print")
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                if "argparse" in names:
                    bad.append(f"{p.name}:{node.lineno} argparse")
    assert bad == []
