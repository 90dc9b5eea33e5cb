"""Export a model as self-contained remote code (`trust_remote_code=True` without brain_gen_hf).

The exporter walks the brain_gen_hf modules a model needs (its config and modeling modules, the
shared layers and base classes they import, and the families of nested sub-configs), inlines them
into two flat files, `configuration_<model_type>.py` and `modeling_<model_type>.py`, drops every
import of `brain_gen_hf`, and writes an `auto_map` for every Auto class the model supports. The
generated files import only torch, transformers and the package's pip dependencies, so they
keep working when brain_gen_hf is not installed.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from pathlib import Path

from ..registration import MODELS, config_class_for, model_entry

PACKAGE = "brain_gen_hf"


def _source_path(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"cannot find the source of {module}")
    return Path(spec.origin)


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """Absolute module name of a `from X import ...` inside `module`."""
    if node.level == 0:
        return node.module or ""
    parts = module.split(".")
    is_package = _source_path(module).name == "__init__.py"
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
    return ".".join(base + ([node.module] if node.module else []))


def _package_imports(module: str, tree: ast.Module) -> list[tuple[ast.AST, list[str], list[str]]]:
    """(node, brain_gen_hf modules it imports, names it imports) for every package import in the module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                names = [a.name for a in node.names]
                mods = []
                is_package = _source_path(target).name == "__init__.py"
                for name in names:  # `from . import layers` imports a module, not a name
                    sub = f"{target}.{name}"
                    mods.append(sub if is_package and importlib.util.find_spec(sub) is not None else target)
                found.append((node, sorted(set(mods)), names))
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names if a.name == PACKAGE or a.name.startswith(PACKAGE + ".")]
            if mods:
                found.append((node, mods, []))
    return found


def _dependency_order(roots: list[str]) -> list[str]:
    """brain_gen_hf modules needed by `roots`, dependencies first (depth-first post-order)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(module: str):
        if module in order or module in visiting or module == PACKAGE or module.endswith(".registration"):
            return
        visiting.add(module)
        tree = ast.parse(_source_path(module).read_text(encoding="utf-8"))
        # Only module-level imports are dependencies: imports deferred into functions are optional features
        # (model cards, this exporter) that the exported code leaves out.
        top_level = ast.Module(
            body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[]
        )
        for _, mods, _ in _package_imports(module, top_level):
            for dep in mods:
                visit(dep)
        visiting.discard(module)
        order.append(module)

    for root in roots:
        visit(root)
    return order


class _DropPackageImports(ast.NodeTransformer):
    """Removes brain_gen_hf imports (their names live in the same flat file or the config file)."""

    def __init__(self, module: str, config_side: set[str], exported_names: set[str], bundled: set[str]):
        self.module, self.config_side, self.exported_names = module, config_side, exported_names
        self.bundled = bundled

    def _drop(self, node):
        imported = _package_imports(self.module, ast.Module(body=[node], type_ignores=[]))
        for _, mods, names in imported:
            if any(m in self.config_side for m in mods):
                self.exported_names.update(names)
        if not self._inside_function:
            return None
        if all(m in self.bundled for _, mods, _ in imported for m in mods):
            return ast.Pass()  # the names are defined in the flat file already
        # A deferred import of something the export leaves out (cards, the exporter itself): fail clearly.
        message = f"{ast.unparse(node)!r} needs the brain_gen_hf package, which this remote code does not include"
        return ast.parse(f"raise ImportError({message!r})").body[0]

    _inside_function = False

    def visit_FunctionDef(self, node):
        previous, self._inside_function = self._inside_function, True
        self.generic_visit(node)
        self._inside_function = previous
        return node

    def visit_ImportFrom(self, node):
        target = _resolve(self.module, node)
        if target == PACKAGE or target.startswith(PACKAGE + "."):
            return self._drop(node)
        return node

    def visit_Import(self, node):
        if any(a.name == PACKAGE or a.name.startswith(PACKAGE + ".") for a in node.names):
            return self._drop(node)
        return node


def _flatten(modules: list[str], config_side: set[str], header: str) -> tuple[str, set[str], list[str]]:
    """(file header with hoisted __future__ imports, names taken from the config file, module bodies)."""
    imported_from_config: set[str] = set()
    future, body, defined = set(), [], {}
    bundled = set(modules) | config_side
    for module in modules:
        tree = ast.parse(_source_path(module).read_text(encoding="utf-8"))
        tree = _DropPackageImports(module, config_side, imported_from_config, bundled).visit(tree)
        statements = []
        for i, node in enumerate(tree.body):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                future.update(a.name for a in node.names)
                continue
            if i == 0 and isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant):
                continue  # module docstring
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
                if node.name in defined and defined[node.name] != module:
                    raise ValueError(
                        f"remote-code export: {node.name!r} is defined in both {defined[node.name]} "
                        f"and {module}; rename one of them"
                    )
                defined[node.name] = module
            statements.append(node)
        body.append(f"# ---- from {module} ----\n" + ast.unparse(ast.Module(body=statements, type_ignores=[])))
    text = header
    if future:
        text += f"from __future__ import {', '.join(sorted(future))}\n\n"
    return text, imported_from_config, body


def export_remote_code(model_type: str, output_dir: str | os.PathLike, extra_model_types: tuple[str, ...] = ()) -> dict:
    """Write `configuration_<model_type>.py` and `modeling_<model_type>.py` into `output_dir`.

    Returns the `auto_map` to store in config.json. `extra_model_types` bundles the families of nested
    sub-models (e.g. a classifier's base model) into the same files.
    """
    entries = [model_entry(model_type)] + [model_entry(t) for t in extra_model_types if t != model_type]
    config_modules = _dependency_order([e.config_module for e in entries])
    config_side = set(config_modules)
    model_modules = [m for m in _dependency_order([e.model_module for e in entries]) if m not in config_side]

    header = (
        "# Generated by brain_gen_hf's remote-code exporter: a self-contained copy of the brain_gen_hf\n"
        "# classes this model needs. Edit the brain_gen_hf sources, not this file.\n"
    )
    config_text, _, config_body = _flatten(config_modules, config_side, header)
    config_file = f"configuration_{model_type}.py"
    model_file = f"modeling_{model_type}.py"
    # Nested sub-configs / sub-models resolve through module-local tables (`SUB_CONFIG_CLASSES`,
    # `SUB_MODEL_CLASSES`, see configuration_utils / modeling_utils), never through process-wide Auto
    # registration, so several exported repos (or brain_gen_hf itself) can be loaded side by side.
    config_table = (
        "SUB_CONFIG_CLASSES.update({" + ", ".join(f"{e.model_type!r}: {e.config_class}" for e in entries) + "})"
    )
    (Path(output_dir) / config_file).write_text(
        config_text + "\n\n".join(config_body) + "\n\n" + config_table + "\n", encoding="utf-8"
    )

    model_text, from_config, model_body = _flatten(model_modules, config_side, header)
    config_names = sorted(from_config | {e.config_class for e in entries})
    model_text += f"from .configuration_{model_type} import {', '.join(config_names)}\n\n"
    model_table = "SUB_MODEL_CLASSES.update({" + ", ".join(f"{e.model_type!r}: {e.model_class}" for e in entries) + "})"
    (Path(output_dir) / model_file).write_text(
        model_text + "\n\n".join(model_body) + "\n\n" + model_table + "\n", encoding="utf-8"
    )

    main = entries[0]
    auto_map = {"AutoConfig": f"configuration_{model_type}.{main.config_class}"}
    for auto in main.auto_classes:
        auto_map[auto] = f"modeling_{model_type}.{main.model_class}"
    return auto_map


def add_auto_map(folder: str | os.PathLike, auto_map: dict) -> None:
    path = Path(folder) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["auto_map"] = auto_map
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def nested_model_types(config) -> tuple[str, ...]:
    """model_types of brain_gen_hf sub-configs (recursively), which remote code must bundle too."""
    known = {e.model_type for e in MODELS}
    found: list[str] = []
    for value in config.to_dict().values():
        if isinstance(value, dict) and value.get("model_type") in known:
            found.append(value["model_type"])
            found.extend(nested_model_types(config_class_for(value["model_type"]).from_dict(value)))
    return tuple(dict.fromkeys(found))
